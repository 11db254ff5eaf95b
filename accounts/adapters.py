from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is for patients on an institution's domain only.

    On the platform's own domain accounts are operators, created by other operators (or the
    demo seed); nobody may sign themselves up there.
    """

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        institution = getattr(request, "tenant", None)
        return institution is not None and institution.schema_name != "public"
