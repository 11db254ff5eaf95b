"""Re-encrypt every second-factor secret under the first key of MFA_ENCRYPTION_KEYS.

Run after putting a new key first (keep the old one listed until this has run), and once after
upgrading from clear-text secrets. Idempotent; goes through the public schema and every
institution's schema.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from django.core.management.base import BaseCommand
from django.db import transaction
from django_tenants.utils import schema_context

from accounts.mfa_adapter import secret_reencrypt
from tenants.selectors import institution_schemas_live

ENCRYPTED_FIELDS = ("secret", "seed")


def authenticators_reencrypt() -> int:
    """In the current schema; returns how many authenticators were rewritten."""
    count = 0
    with transaction.atomic():
        for authenticator in Authenticator.objects.select_for_update():
            data = dict(authenticator.data)
            for field in ENCRYPTED_FIELDS:
                if isinstance(data.get(field), str):
                    data[field] = secret_reencrypt(data[field])
            if isinstance(data.get("migrated_codes"), list):
                data["migrated_codes"] = [secret_reencrypt(code) for code in data["migrated_codes"]]
            if data != authenticator.data:
                authenticator.data = data
                authenticator.save(update_fields=["data"])
                count += 1
    return count


class Command(BaseCommand):
    help = "Re-encrypt second-factor secrets under the first MFA_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        schemas = ["public", *institution_schemas_live()]
        total = 0
        for schema in schemas:
            with schema_context(schema):
                total += authenticators_reencrypt()
        self.stdout.write(f"Re-encrypted {total} authenticator(s) in {len(schemas)} schema(s).\n")
