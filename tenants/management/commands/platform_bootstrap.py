"""Create the platform's own tenant row (the public schema) and its domain, PLATFORM_DOMAIN.

Run by the deploy's migrate step (``deploy/secondread.sh migrate``) after every migration:
without these rows every request to the platform domain (the probes' Host included) is an
unknown host. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants.services import platform_host, public_tenant_ensure


class Command(BaseCommand):
    help = "Create the public tenant and the platform domain if missing (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        public_tenant_ensure()
        self.stdout.write(f"platform tenant ready at {platform_host()}\n")
