"""Which institution schemas are at which migration version, which are being migrated and
which failed (from what the migration executor recorded; ``--check`` reads every schema's
``django_migrations`` afresh first)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.schema_migration_report import migration_report


class Command(BaseCommand):
    help = "Report which institution schemas are at which migration version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="read every schema's applied migrations before reporting"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(migration_report(check=options["check"]))
