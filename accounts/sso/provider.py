"""allauth's OpenID Connect provider with the checks it leaves out (see accounts.sso)."""

from __future__ import annotations

import secrets
from typing import Any

import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

# Signature algorithms accepted for ID tokens: asymmetric only (never "none" or HS256, whose
# key would be the client secret).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
CLOCK_SKEW_SECONDS = 60
NONCE_SECONDS = 15 * 60


class InstitutionOIDCAdapter(OpenIDConnectOAuth2Adapter):
    # The sign-in's stashed state (holding its nonce), set by the callback view before the
    # token is exchanged.
    state: dict[str, Any] | None = None

    @property
    def openid_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().openid_config
        issuer = self.get_provider().app.settings["issuer"]
        if config.get("issuer") != issuer:
            raise OAuth2Error("The provider's discovery document names another issuer.")
        return config

    def _decode_id_token(self, app: SocialApp, id_token: str) -> dict[str, Any]:
        """Every check of OpenID Connect Core 3.1.3.7, the signature included, and the nonce."""
        try:
            with get_adapter().get_requests_session() as session:
                response = session.get(self.openid_config["jwks_uri"])
                response.raise_for_status()
                keys = KeySet.import_key_set(response.json())
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError, KeyError, requests.RequestException) as error:
            raise OAuth2Error("The ID token's signature could not be verified.") from error
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": app.settings["issuer"]},
            aud={"essential": True, "value": app.client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise OAuth2Error(f"The ID token was refused ({error.error}).") from error
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != app.client_id:
            raise OAuth2Error("The ID token was meant for another client.")
        expected = (self.state or {}).get("nonce")
        if not expected or not secrets.compare_digest(str(claims["nonce"]), str(expected)):
            raise OAuth2Error("The ID token was not issued for this sign-in (nonce).")
        # Good once: a token replayed into another flow of the same session is refused too.
        if not cache.add(f"sso:nonce:{expected}", True, timeout=NONCE_SECONDS):
            raise OAuth2Error("The ID token was already used.")
        return claims


class InstitutionOIDCProvider(OpenIDConnectProvider):
    oauth2_adapter_class = InstitutionOIDCAdapter

    @classmethod
    def get_package(cls) -> str:
        # allauth mounts the URLs of the provider's package; ours (config.urls_tenant) come
        # first at the same paths, so its views are never reached.
        return "allauth.socialaccount.providers.openid_connect"

    def get_oauth2_adapter(self, request: HttpRequest) -> InstitutionOIDCAdapter:
        return InstitutionOIDCAdapter(request, self.app.provider_id)

    def redirect(
        self, request: HttpRequest, process: Any, next_url: Any = None, data: Any = None, **kwargs: Any
    ) -> HttpResponse:
        """allauth's, with a nonce: sent to the provider, kept in this sign-in's state."""
        app = self.app
        oauth2_adapter = self.get_oauth2_adapter(request)
        client = oauth2_adapter.get_client(request, app)
        auth_params = kwargs.pop("auth_params", None) or self.get_auth_params()
        pkce_params = self.get_pkce_params()
        code_verifier = pkce_params.pop("code_verifier", None)
        auth_params.update(pkce_params)
        nonce = secrets.token_urlsafe(32)
        auth_params["nonce"] = nonce
        scope = kwargs.pop("scope", None) or self.get_scope()
        state_id = self.stash_redirect_state(
            request, process, next_url, data, pkce_code_verifier=code_verifier, nonce=nonce, **kwargs
        )
        client.state = state_id
        return HttpResponseRedirect(client.get_redirect_url(oauth2_adapter.authorize_url, scope, auth_params))


class _CallbackView(OAuth2CallbackView):
    def _get_state(self, request: HttpRequest, provider: Any) -> tuple[Any, Any]:
        state, response = super()._get_state(request, provider)
        self.adapter.state = state
        return state, response


def login(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        view = OAuth2LoginView.adapter_view(InstitutionOIDCAdapter(request, provider_id))
        return view(request)  # type: ignore[no-any-return]
    except SocialApp.DoesNotExist as missing:
        raise Http404 from missing


def callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        view = _CallbackView.adapter_view(InstitutionOIDCAdapter(request, provider_id))
        return view(request)  # type: ignore[no-any-return]
    except SocialApp.DoesNotExist as missing:
        raise Http404 from missing
