"""Second-factor secrets are encrypted at rest with keys from the environment, and keys rotate."""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from accounts.models import User
from review.demo import DEMO_TOTP_SECRET
from tenants.models import Institution
from tests.staff import staff_sign_in


def _stored_secret(user: User) -> str:
    # Straight from the table, as a backup holds it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data->>'secret' FROM mfa_authenticator WHERE user_id = %s AND type = 'totp'", [user.pk]
        )
        return str(cursor.fetchone()[0])


def test_it_stores_totp_secrets_encrypted(neuro: Institution) -> None:
    with schema_context(neuro.schema_name):
        user = User.objects.get(email="reviewer1@neuro.example.com")
        stored = _stored_secret(user)
    assert DEMO_TOTP_SECRET not in stored and stored.startswith("fernet:")
    staff_sign_in(Client(HTTP_HOST="neuro.localhost"), "reviewer1@neuro.example.com")  # still works


def test_it_rotates_the_key(neuro: Institution, settings: Any) -> None:
    old = list(settings.MFA_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    with schema_context(neuro.schema_name):
        user = User.objects.create_user("rotating@neuro.example.com", "x", is_coordinator=True)
        TOTP.activate(user, DEMO_TOTP_SECRET)
        before = _stored_secret(user)
    with override_settings(MFA_ENCRYPTION_KEYS=[new_key, *old]):
        call_command("mfa_secrets_reencrypt", stdout=open("/dev/null", "w"))  # noqa: SIM115
        with schema_context(neuro.schema_name):
            after = _stored_secret(user)
    assert after != before
    # The old key can go: the secret reads back under the new key alone.
    with override_settings(MFA_ENCRYPTION_KEYS=[new_key]), schema_context(neuro.schema_name):
        authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
        from tests.staff import totp_code

        assert TOTP(authenticator).validate_code(totp_code())


def test_it_encrypts_secrets_stored_in_clear_before(neuro: Institution) -> None:
    with schema_context(neuro.schema_name):
        user = User.objects.create_user("legacy@neuro.example.com", "x", is_coordinator=True)
        Authenticator.objects.create(
            user=user, type=Authenticator.Type.TOTP, data={"secret": DEMO_TOTP_SECRET}
        )
    call_command("mfa_secrets_reencrypt", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with schema_context(neuro.schema_name):
        assert _stored_secret(user).startswith("fernet:")
