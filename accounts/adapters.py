from __future__ import annotations

from email.utils import formataddr, parseaddr
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.mail import EmailMessage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.audit_events import sso_refused_record
from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from accounts.reauthentication import session_recently_authenticated
from accounts.sso.config import single_sign_on_active
from branding.selectors import brand_for_institution
from tenants.models import Institution

SSO_REQUIRED = "Staff here sign in through {name}: use the button below, not a password."


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is for patients on an institution's domain only, and account emails there come
    in the institution's name.

    On the platform's own domain accounts are operators, created by other operators (or the
    demo seed); nobody may sign themselves up there, and its emails stay SecondRead's.
    """

    def clean_email(self, email: str) -> str:
        """Sign-ups are limited per address too (allauth limits them per client address only),
        so nobody floods one person's inbox with confirmation emails."""
        email = str(super().clean_email(email))
        request = allauth_context.request
        if (
            request is not None
            and request.method == "POST"
            and request.resolver_match is not None
            and request.resolver_match.url_name == "account_signup"
            and not attempt_allowed(request, action="signup_email", key=email.lower())
        ):
            raise forms.ValidationError(TOO_MANY_ATTEMPTS)
        return email

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        """Not right after signing in: setting up the authenticator the workspace sends a new
        staff member to does not ask for the password they typed a moment ago
        (``accounts.reauthentication``)."""
        request = allauth_context.request
        if request is not None and session_recently_authenticated(request, request.user):
            return False
        return bool(super().is_reauthentication_required(app=app, **kwargs))

    def get_login_stages(self) -> list[str]:
        """allauth's, with the second-factor step that may count the identity provider's MFA."""
        return [
            "accounts.sso.stage.SecondFactorStage"
            if stage == "allauth.mfa.stages.AuthenticateStage"
            else stage
            for stage in super().get_login_stages()
        ]

    def pre_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse | None:
        """Staff of an institution that requires single sign-on may not use their password."""
        signal_kwargs = kwargs.get("signal_kwargs") or {}
        if (
            self._institution() is not None
            and getattr(user, "is_institution_staff", False)
            and "sociallogin" not in signal_kwargs
        ):
            config = single_sign_on_active()
            if config is not None and config.required_for_staff:
                from allauth.account.internal.stagekit import clear_login

                clear_login(request)
                sso_refused_record(request, reason="password_refused_sso_required", email=user.email)
                messages.error(request, SSO_REQUIRED.format(name=config.display_name))
                return HttpResponseRedirect(reverse("account_login") + "?staff=1")
        return super().pre_login(request, user, **kwargs)  # type: ignore[no-any-return]

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        institution = getattr(request, "tenant", None)
        return institution is not None and institution.schema_name != "public"

    def _institution(self) -> Institution | None:
        """The institution whose site the account email is sent from (None on the platform)."""
        request = allauth_context.request or self.request
        institution = getattr(request, "tenant", None)
        if not isinstance(institution, Institution) or institution.schema_name == "public":
            return None
        return institution

    def get_from_email(self) -> str:
        """``"<Institution name> <platform address>"``, as ``branding.emails`` sends: patients
        see who writes to them, while the address stays one the platform may send from."""
        institution = self._institution()
        if institution is None:
            return str(super().get_from_email())
        _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
        # formataddr quotes a name holding commas or other specials ("Lakeside, Inc.").
        return formataddr((institution.name, address))

    def render_mail(
        self,
        template_prefix: str,
        email: str | list[str],
        context: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> EmailMessage:
        """Replies go to the institution's support address, when it has one."""
        message: EmailMessage = super().render_mail(template_prefix, email, context, headers=headers)
        institution = self._institution()
        brand = brand_for_institution(institution=institution) if institution else None
        if brand is not None and brand.support_email:
            message.reply_to = [brand.support_email]
        return message
