"""Which language a page is in, and the patient's language remembered for emails.

Django's LocaleMiddleware chooses the language from the language switch's cookie, else the
browser's Accept-Language. What patients see is translated; staff pages and the platform (its
operators, institutions signing up) are written in English only, so they are kept whole in
English rather than shown half-translated to someone whose browser prefers Spanish.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from accounts.models import User


def user_language_remember(*, user: User, language: str) -> None:
    """Keep ``language`` as the one the patient reads in (one UPDATE, only when it changed)."""
    if user.language != language:
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language


def is_english_only(request: HttpRequest) -> bool:
    """The platform's own site and every staff member's pages are in English only."""
    if getattr(connection, "schema_name", "public") == "public":
        return True
    user = getattr(request, "user", None)
    return isinstance(user, User) and user.is_institution_staff


class LanguageMiddleware:
    """After LocaleMiddleware and authentication: English for staff and the platform; for a
    signed-in patient, the page's language is remembered (emails sent later, for instance when
    a reviewer releases the opinion, are written in it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_english_only(request):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
        elif isinstance(request.user, User):
            user_language_remember(user=request.user, language=translation.get_language())
        return self.get_response(request)
