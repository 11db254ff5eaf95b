"""``import_institution FILE``: recreate an exported institution here (see institutions.transfer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from institutions.transfer import TransferError, institution_import


class Command(BaseCommand):
    help = "Recreate an institution from its archive (refused if its slug or schema exists)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = institution_import(path=options["archive"])
        except TransferError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{summary.slug}: {sum(summary.tables.values())} rows, {len(summary.files)} files imported\n"
        )
