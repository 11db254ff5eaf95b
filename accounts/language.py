"""Which language a page is in, and the patient's language remembered for emails.

On an institution's site the language is one the institution offers (``Brand.language_list``):
the language switch's cookie if it names one, else the first of the browser's Accept-Language
that does, else the institution's default language. What patients see is translated; staff
pages and the platform (its operators, institutions signing up) are written in English only,
so they are kept whole in English rather than shown half-translated to someone whose browser
prefers Spanish.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

from accounts.models import User
from branding.selectors import brand_for_institution


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


def language_choose(request: HttpRequest, *, offered: list[str], default: str) -> str:
    """The switch's choice (its cookie), else the browser's first language among ``offered``
    (``es-MX`` counts as ``es``), else ``default``."""
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    if chosen in offered:
        return chosen
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if code == "*":
            break
        base = code.split("-")[0]
        if base in offered:
            return base
    return default


def _institution_language(request: HttpRequest) -> str | None:
    institution = getattr(request, "tenant", None)
    brand = brand_for_institution(institution=institution) if institution is not None else None
    if brand is None:
        return None
    return language_choose(request, offered=brand.language_list, default=brand.default_language)


class LanguageMiddleware:
    """After LocaleMiddleware and authentication: English for staff and the platform; a
    patient's page in a language their institution offers; for a signed-in patient, the page's
    language is remembered (emails sent later, for instance when a reviewer releases the
    opinion, are written in it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_english_only(request):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return self.get_response(request)
        language = _institution_language(request)
        if language is not None and language != translation.get_language():
            translation.activate(language)
            request.LANGUAGE_CODE = language
        if isinstance(request.user, User):
            user_language_remember(user=request.user, language=translation.get_language())
        return self.get_response(request)
