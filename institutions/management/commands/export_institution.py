"""``export_institution SLUG --output FILE``: one archive of an institution (see institutions.transfer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from institutions.transfer import institution_export
from tenants.models import Institution


class Command(BaseCommand):
    help = "Write an institution's schema, public rows and files to one archive (.tar.gz)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--output", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = institution_export(slug=options["slug"], path=options["output"])
        except Institution.DoesNotExist as error:
            raise CommandError(f"No institution {options['slug']}.") from error
        self.stdout.write(
            f"{summary.slug}: {sum(summary.tables.values())} rows in {len(summary.tables)} tables, "
            f"{len(summary.files)} files -> {options['output']}\n"
        )
