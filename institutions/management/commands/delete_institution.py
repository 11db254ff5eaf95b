"""``delete_institution SLUG --archive FILE --by WHO --reason WHY``: remove an institution after
its export.

The archive must be the institution's own export and hold every file it has now. The deletion
(schema, files, domains, public rows) is recorded as an ``InstitutionRemoval`` (who, why, the
archive's sha256; append-only, shown on the operator console) and logged as an
``institution.deleted`` event; the institution's operator actions stay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from institutions.transfer import TransferError, institution_delete
from tenants.models import Institution


class Command(BaseCommand):
    help = "Delete an institution's schema, files, domains and public rows, after its export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--archive", required=True, type=Path, help="its export_institution archive")
        parser.add_argument("--by", required=True, help="who deletes it (an operator's email), recorded")
        parser.add_argument("--reason", required=True, help="why (e.g. the contract ended), recorded")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            institution_delete(
                slug=options["slug"],
                archive=options["archive"],
                removed_by=options["by"],
                reason=options["reason"],
            )
        except (TransferError, FileNotFoundError) as error:
            raise CommandError(str(error)) from error
        except Institution.DoesNotExist as error:
            raise CommandError(f"No institution {options['slug']}.") from error
        self.stdout.write(f"{options['slug']} deleted (its archive: {options['archive']})\n")
