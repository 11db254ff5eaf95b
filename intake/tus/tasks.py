"""Expiring unfinished uploads (tus expiration extension), run by Celery beat.

Beat publishes from the public schema, so the hourly task fans out one task per institution;
tenant-schemas-celery runs each of those in its institution's schema.
"""

from __future__ import annotations

from celery import shared_task
from django_tenants.utils import get_public_schema_name, schema_context


@shared_task(name="intake.tus.uploads_expire_all")
def uploads_expire_all() -> int:
    """Queue an expiry sweep in every institution's schema; return how many were queued."""
    from tenants.models import Institution

    schemas = list(
        Institution.objects.exclude(schema_name=get_public_schema_name()).values_list(
            "schema_name", flat=True
        )
    )
    for schema in schemas:
        with schema_context(schema):
            uploads_expire.delay()
    return len(schemas)


@shared_task(name="intake.tus.uploads_expire")
def uploads_expire() -> int:
    """Expire the current schema's unfinished uploads past their time (safe to run twice)."""
    from intake.tus.services import uploads_expired_cleanup

    return uploads_expired_cleanup()
