"""Recompute the audit log's hash chain in every live institution's schema; exit 1 if one is
broken. (Here, not in the audit app: audit is the bottom layer and cannot know institutions.)"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from audit.services import audit_chain_verify
from tenants.selectors import institution_schemas_live


class Command(BaseCommand):
    help = "Verify the audit log's hash chain of every institution."

    def handle(self, *args: Any, **options: Any) -> None:
        broken = []
        for schema in institution_schemas_live():
            with schema_context(schema):
                report = audit_chain_verify()
            if report.intact:
                self.stdout.write(f"{schema}: {report.checked} event(s), chain intact\n")
            else:
                self.stdout.write(f"{schema}: chain BROKEN at event {report.broken_at}\n")
                broken.append(schema)
        if broken:
            raise CommandError(f"The audit chain is broken in: {', '.join(broken)}")
