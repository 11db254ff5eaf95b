"""Create or update the template schema new institutions are cloned from (run after every
migrate at deploy time; seed_demo runs it too). Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from institutions.provisioning import TEMPLATE_SCHEMA, tenant_template_ensure


class Command(BaseCommand):
    help = "Create or migrate the template schema that new institutions are cloned from."

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_template_ensure()
        self.stdout.write(f"template schema {TEMPLATE_SCHEMA} is up to date\n")
