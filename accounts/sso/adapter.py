"""Who may sign in through the institution's identity provider (see accounts.sso)."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from django.http import HttpRequest
from django.shortcuts import render

from accounts.audit_events import sso_refused_record
from accounts.models import User
from accounts.sso.config import client_secret, domains_allowed, single_sign_on_active

PROVIDER_ID = "institution"

# One message for every refusal that depends on who the person is, so the page never tells an
# outsider which addresses are staff here; the reason goes to the audit log.
NOT_STAFF_HERE = (
    "This account cannot sign in to the staff workspace here. Single sign-on is for the "
    "institution's staff: ask your administrator to invite you first. Patients sign in with "
    "their email and password."
)
EMAIL_NOT_VERIFIED = "Your organisation's sign-in did not confirm your email address, so we cannot match it."
SIGN_IN_FAILED = (
    "Signing in through your organisation did not succeed, and nothing was changed. "
    "Please try again; if it keeps failing, tell your administrator."
)


def id_token_claims(sociallogin: SocialLogin) -> dict[str, Any]:
    claims = (sociallogin.account.extra_data or {}).get("id_token") or {}
    return claims if isinstance(claims, dict) else {}


def _refuse(request: HttpRequest, message: str, reason: str, email: str = "") -> ImmediateHttpResponse:
    sso_refused_record(request, reason=reason, email=email)
    return ImmediateHttpResponse(
        render(request, "accounts/sso_refused.html", {"message": message}, status=403)
    )


def staff_account_for(email: str) -> User | None:
    """The active staff account of this institution whose confirmed address is ``email``."""
    address = (
        EmailAddress.objects.select_related("user")
        .filter(email__iexact=email, verified=True, user__is_active=True)
        .first()
    )
    user: User | None = address.user if address is not None else None
    if user is None or not (user.is_institution_staff and user.is_invited_staff):
        return None
    return user


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(
        self, request: HttpRequest | None, provider: Any = None, client_id: Any = None
    ) -> list[SocialApp]:
        """The institution's own provider, built from its settings row (never stored by allauth:
        its secret stays encrypted at rest). None on the platform's domain."""
        institution = getattr(request, "tenant", None) if request is not None else None
        if institution is None or institution.schema_name == "public":
            return []
        config = single_sign_on_active()
        if config is None or provider not in (None, "openid_connect", PROVIDER_ID):
            return []
        app = SocialApp(
            provider="openid_connect",
            provider_id=PROVIDER_ID,
            name=config.display_name,
            client_id=config.client_id,
            secret=client_secret(config),
            settings={
                "server_url": config.issuer.rstrip("/") + "/.well-known/openid-configuration",
                "issuer": config.issuer,
                "fetch_userinfo": False,
                "oauth_pkce_enabled": True,
            },
        )
        return [app] if client_id in (None, app.client_id) else []

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False  # nobody is created through single sign-on

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Let in only this institution's staff; link an account once, by confirmed address."""
        claims = id_token_claims(sociallogin)
        email = str(claims.get("email") or "").strip().lower()
        config = single_sign_on_active()
        if config is None:
            raise _refuse(request, SIGN_IN_FAILED, "sso_off", email)
        domains = domains_allowed(config)
        if domains and email.rsplit("@", 1)[-1] not in domains:
            raise _refuse(request, NOT_STAFF_HERE, "domain_not_allowed", email)
        if sociallogin.is_existing:
            user = sociallogin.user
            if not (user.is_active and user.is_institution_staff and user.is_invited_staff):
                raise _refuse(request, NOT_STAFF_HERE, "no_longer_staff", email)
            return
        if claims.get("email_verified") is not True:
            raise _refuse(request, EMAIL_NOT_VERIFIED, "email_not_verified", email)
        user = staff_account_for(email)
        if user is None:
            reason = "not_staff" if User.objects.filter(email__iexact=email).exists() else "no_account"
            raise _refuse(request, NOT_STAFF_HERE, reason, email)
        # Linked once: later sign-ins find the account by the provider's subject, not the email.
        sociallogin.connect(request, user)

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        # The reason (signature, issuer, expiry, nonce...) goes to the audit log, not the page.
        detail = str(exception)[:200] if exception is not None else str(error or "")
        sso_refused_record(request, reason="token_refused", detail=detail)
        raise ImmediateHttpResponse(
            render(request, "accounts/sso_refused.html", {"message": SIGN_IN_FAILED}, status=403)
        )
