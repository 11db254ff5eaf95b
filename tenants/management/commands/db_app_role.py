"""Create the application's database role (DATABASE_APP_URL) if missing and grant it its rights
on every schema: read/write on every table, INSERT/SELECT only on the audit log. Run by the
deploy's migrate step as the owner, after migrating; idempotent. Without DATABASE_APP_URL there
is one role for everything and nothing to do."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.database_roles import app_role, database_app_role_ensure


class Command(BaseCommand):
    help = "Create and grant the application's restricted database role (DATABASE_APP_URL)."

    def handle(self, *args: Any, **options: Any) -> None:
        role = app_role()
        if role is None:
            self.stdout.write("DATABASE_APP_URL is not set: one database role for everything.\n")
            return
        try:
            schemas = database_app_role_ensure()
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Role {role.name}: read/write on {len(schemas)} schema(s), the audit log append-only.\n"
        )
