"""Expiring unfinished uploads (tus expiration extension), run by Celery beat.

Beat publishes from the public schema, so the hourly task fans out one task per institution;
tenant-schemas-celery runs each of those in its institution's schema.
"""

from __future__ import annotations

from celery import shared_task
from django_tenants.utils import schema_context


@shared_task(name="intake.tus.uploads_expire_all")
def uploads_expire_all() -> int:
    """Queue an expiry sweep in every institution's schema (drafts have none yet); return how
    many were queued."""
    from tenants.selectors import institution_schemas_live

    schemas = institution_schemas_live()  # drafts have no schema to run in yet
    for schema in schemas:
        with schema_context(schema):
            uploads_expire.delay()
    return len(schemas)


@shared_task(name="intake.tus.uploads_expire")
def uploads_expire() -> int:
    """Expire the current schema's unfinished uploads past their time (safe to run twice)."""
    from intake.tus.services import uploads_expired_cleanup

    return uploads_expired_cleanup()
