"""The institution administrator's single sign-on settings (one row in the institution's schema)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests
from django.db import transaction

from accounts.mfa_adapter import secret_decrypt, secret_encrypt
from accounts.models import SingleSignOn

SAVED = "Single sign-on is saved."
SAVED_OFF = "Single sign-on is saved, and off: staff sign in with their password and authenticator."
REMOVED = "Single sign-on is removed."
ISSUER_UNREACHABLE = (
    "We could not read the provider's discovery document at {url} ({reason}). Check the issuer address."
)
ISSUER_MISMATCH = (
    "The provider's discovery document names another issuer ({found}): use exactly that address."
)
ISSUER_INSECURE = "The issuer address must start with https:// (http:// only for a provider on this machine)."
CLIENT_REQUIRED = "Enter the client id and the client secret your provider gave for SecondRead."
DOMAIN_PATTERN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")
DOMAIN_INVALID = "{domain} is not an email domain (for example hospital.org)."


@dataclass(frozen=True)
class SingleSignOnInput:
    issuer: str
    client_id: str
    client_secret: str  # empty: keep the stored one
    display_name: str
    allowed_domains: str
    enabled: bool
    required_for_staff: bool
    trust_provider_mfa: bool
    mfa_acr_values: str


def single_sign_on_get() -> SingleSignOn | None:
    return SingleSignOn.objects.order_by("pk").first()


def single_sign_on_active() -> SingleSignOn | None:
    """The settings in force on this schema's site, or None (password sign-in only)."""
    config = single_sign_on_get()
    return config if config is not None and config.enabled and config.client_secret_encrypted else None


def client_secret(config: SingleSignOn) -> str:
    return secret_decrypt(config.client_secret_encrypted)


def domains_allowed(config: SingleSignOn) -> list[str]:
    return [d.strip().lower() for d in config.allowed_domains.split(",") if d.strip()]


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _issuer_check(issuer: str) -> None:
    """The discovery document is there and names ``issuer`` itself (OpenID Connect Discovery 4.3)."""
    local = issuer.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if not issuer.startswith("https://") and not local:
        raise ValueError(ISSUER_INSECURE)
    url = discovery_url(issuer)
    try:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        found = response.json().get("issuer", "")
    except (requests.RequestException, ValueError) as error:
        reason = type(error).__name__ if not isinstance(error, requests.HTTPError) else str(error)[:80]
        raise ValueError(ISSUER_UNREACHABLE.format(url=url, reason=reason)) from error
    if found != issuer:
        raise ValueError(ISSUER_MISMATCH.format(found=found or "none"))


def single_sign_on_save(*, data: SingleSignOnInput) -> SingleSignOn:
    """Check and store the settings (the secret encrypted). Raises ValueError with a message for
    the administrator; nothing is stored then."""
    issuer = data.issuer.strip()
    current = single_sign_on_get()
    if not data.client_id.strip() or not (
        data.client_secret or (current and current.client_secret_encrypted)
    ):
        raise ValueError(CLIENT_REQUIRED)
    domains = [d.strip().lower().lstrip("@") for d in data.allowed_domains.split(",") if d.strip()]
    for domain in domains:
        if not DOMAIN_PATTERN.fullmatch(domain):
            raise ValueError(DOMAIN_INVALID.format(domain=domain[:100]))
    _issuer_check(issuer)
    with transaction.atomic():
        config = current or SingleSignOn()
        config.issuer = issuer
        config.client_id = data.client_id.strip()
        if data.client_secret:
            config.client_secret_encrypted = secret_encrypt(data.client_secret)
        config.display_name = data.display_name.strip()[:100] or "your organisation"
        config.allowed_domains = ",".join(domains)
        config.enabled = data.enabled
        config.required_for_staff = data.enabled and data.required_for_staff
        config.trust_provider_mfa = data.trust_provider_mfa
        config.mfa_acr_values = ",".join(v.strip() for v in data.mfa_acr_values.split(",") if v.strip())
        config.save()
    return config


def single_sign_on_remove() -> bool:
    deleted, _ = SingleSignOn.objects.all().delete()
    return bool(deleted)
