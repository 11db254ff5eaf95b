"""Ingest work in the background: each task carries its institution's schema (tenant-schemas-celery)
and an id, and calls one service; running one twice does no harm."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="imaging.upload_ingest")
def upload_ingest(upload_id: int) -> None:
    """Ingest a complete upload, and with it a batch of its case's other waiting imaging uploads
    (a folder drop). Claims them first: the tasks of uploads already claimed, and a second
    delivery of this one, do nothing."""
    from imaging.ingest.pipeline import upload_ingest_run

    upload_ingest_run(upload_id=upload_id)


@shared_task(name="imaging.series_preview")
def series_preview(series_id: int) -> None:
    """Draw a series' preview if it has none yet or grew since the last one (idempotent)."""
    from imaging.ingest.preview import series_preview_ensure

    series_preview_ensure(series_id=series_id)


@shared_task(name="imaging.uploads_ingest_resume_all")
def uploads_ingest_resume_all() -> int:
    """Beat publishes from the public schema: queue the stalled-upload sweep in every
    institution's schema (drafts have none yet); return how many were queued."""
    from django_tenants.utils import schema_context

    from tenants.selectors import institution_schemas_live

    schemas = institution_schemas_live()  # drafts have no schema to run in yet
    for schema in schemas:
        with schema_context(schema):
            uploads_ingest_resume.delay()
    return len(schemas)


@shared_task(name="imaging.uploads_ingest_resume")
def uploads_ingest_resume() -> int:
    """Queue ingest again for this schema's stalled uploads (see the service)."""
    from imaging.ingest.pipeline import uploads_stalled_requeue

    return uploads_stalled_requeue()
