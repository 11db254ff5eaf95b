"""Re-encrypt every secret kept encrypted at rest under the first key of MFA_ENCRYPTION_KEYS:
second factors (TOTP secrets, WebAuthn seeds, recovery codes) and every model field named
``*_encrypted`` (a PACS's password or token, a FHIR server's credentials, an identity
provider's client secret), in the public schema and every institution's.

Run after putting a new key first (keep the old one listed until this has run), and once after
upgrading from clear-text secrets. Idempotent. Until it has run, a secret written under a key
that is then dropped can no longer be read: the PACS, the FHIR server or single sign-on would
stop working, not only second factors.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, models, transaction
from django_tenants.utils import schema_context

from accounts.mfa_adapter import secret_reencrypt
from tenants.selectors import institution_schemas_live

ENCRYPTED_FIELDS = ("secret", "seed")
# Fields named so hold secret_encrypt()'s output (accounts.mfa_adapter); a test keeps every
# field that holds a secret named so.
ENCRYPTED_SUFFIX = "_encrypted"


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


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with ``*_encrypted`` fields, and those fields' names."""
    found = []
    for model in apps.get_models():
        names = [field.name for field in model._meta.concrete_fields if field.name.endswith(ENCRYPTED_SUFFIX)]
        if names:
            found.append((model, names))
    return found


def fields_reencrypt() -> int:
    """In the current schema (models whose table is not in it are skipped); returns how many
    rows were rewritten."""
    present = set(connection.introspection.table_names())
    count = 0
    with transaction.atomic():
        for model, names in encrypted_fields():
            if model._meta.db_table not in present:
                continue
            for row in model._default_manager.select_for_update().only("pk", *names):
                changed = {name: secret_reencrypt(getattr(row, name)) for name in names if getattr(row, name)}
                if changed:
                    model._default_manager.filter(pk=row.pk).update(**changed)
                    count += 1
    return count


class Command(BaseCommand):
    help = "Re-encrypt second factors and every *_encrypted field under the first MFA_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        schemas = ["public", *institution_schemas_live()]
        authenticators = rows = 0
        for schema in schemas:
            with schema_context(schema):
                authenticators += authenticators_reencrypt()
                rows += fields_reencrypt()
        self.stdout.write(
            f"Re-encrypted {authenticators} authenticator(s) and {rows} other secret(s) "
            f"in {len(schemas)} schema(s).\n"
        )
