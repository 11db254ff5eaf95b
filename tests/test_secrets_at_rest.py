"""Secrets kept for talking to other systems (a PACS's password, a FHIR server's credentials, an
identity provider's client secret) are encrypted at rest and follow a key rotation, as second
factors do (accounts/tests/test_mfa_secrets.py)."""

from __future__ import annotations

import io
from typing import Any

from cryptography.fernet import Fernet
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from accounts.mfa_adapter import secret_decrypt, secret_encrypt
from accounts.models import User
from imaging.models import PacsDestination
from tenants.models import Institution

# Fields whose names say "secret", "password" or "token" but hold no secret to recover.
NO_SECRET_HELD = {
    # one-way hashes (Django's password hash among them)
    "accounts.User.password",
    "tenants.Onboarding.password_hash",
    "imaging.IntegrationCredential.secret_sha256",
    "review.OpinionShare.token_sha256",
    # public by design: the value an admin puts in a DNS TXT record; an address
    "tenants.CustomDomain.token",
    "review.FhirEndpoint.token_url",
    # allauth's own tables, left empty: single sign-on builds its SocialApp in memory from
    # accounts.SingleSignOn (client secret encrypted there), and tokens are not stored
    # (SOCIALACCOUNT_STORE_TOKENS off, checked below)
    "socialaccount.SocialApp.secret",
    "socialaccount.SocialToken.token",
    "socialaccount.SocialToken.token_secret",
}


def _stored(destination: PacsDestination) -> str:
    with connection.cursor() as cursor:  # straight from the table, as a backup holds it
        cursor.execute("SELECT secret_encrypted FROM imaging_pacsdestination WHERE id = %s", [destination.pk])
        return str(cursor.fetchone()[0])


def test_a_key_rotation_reencrypts_every_stored_secret(neuro: Institution, settings: Any) -> None:
    old = list(settings.MFA_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    with schema_context(neuro.schema_name):
        destination = PacsDestination.objects.create(
            name="Hospital PACS",
            kind=PacsDestination.Kind.DICOMWEB,
            stow_url="https://pacs.example.org/dicom-web/studies",
            auth=PacsDestination.Auth.BASIC,
            username="secondread",
            secret_encrypted=secret_encrypt("hunter2"),
            created_by=User.objects.get(email="admin@neuro.example.com"),
        )
        before = _stored(destination)
    with override_settings(MFA_ENCRYPTION_KEYS=[new_key, *old]):
        out = io.StringIO()
        call_command("mfa_secrets_reencrypt", stdout=out)
        assert "1 other secret(s)" in out.getvalue()
    with schema_context(neuro.schema_name):
        after = _stored(destination)
    assert after != before and "hunter2" not in after
    # The old key can go: the PACS password still reads back under the new key alone.
    with override_settings(MFA_ENCRYPTION_KEYS=[new_key]):
        assert secret_decrypt(after) == "hunter2"


def test_every_field_holding_a_secret_is_encrypted_or_a_hash() -> None:
    unprotected = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            name = field.name
            if not any(word in name for word in ("secret", "password", "token")):
                continue
            if name.endswith("_encrypted") or f"{model._meta.label}.{name}" in NO_SECRET_HELD:
                continue
            unprotected.append(f"{model._meta.label}.{name}")
    assert unprotected == []
    assert not getattr(settings, "SOCIALACCOUNT_STORE_TOKENS", False)
