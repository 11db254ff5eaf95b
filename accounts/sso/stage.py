"""The second factor after single sign-on (see accounts.sso): allauth's authenticator step,
skipped only when the institution trusts its provider's MFA and the ID token says it was used."""

from __future__ import annotations

from typing import Any

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.stages import AuthenticateStage
from django.http import HttpRequest

from accounts.sso.config import single_sign_on_active

# RFC 8176: "mfa" is the provider's own statement that more than one factor was used.
MFA_AMR = "mfa"


def provider_asserted_mfa(claims: dict[str, Any]) -> bool:
    """Whether the institution trusts its provider's MFA and these ID token claims assert it."""
    config = single_sign_on_active()
    if config is None or not config.trust_provider_mfa:
        return False
    amr = claims.get("amr") or []
    acr_values = {v for v in config.mfa_acr_values.split(",") if v}
    return (isinstance(amr, list) and MFA_AMR in amr) or (
        bool(acr_values) and claims.get("acr") in acr_values
    )


class SecondFactorStage(AuthenticateStage):
    def _should_handle(self, request: HttpRequest) -> bool:
        sociallogin = (self.login.signal_kwargs or {}).get("sociallogin")
        if sociallogin is not None and self.login.user is not None:
            from accounts.sso.adapter import id_token_claims

            claims = id_token_claims(sociallogin)
            if provider_asserted_mfa(claims):
                # Counts as this session's second factor (review.middleware reads the record).
                record_authentication(
                    request, self.login.user, "mfa", type="identity_provider", amr=claims.get("amr") or []
                )
                return False
        return bool(super()._should_handle(request))
