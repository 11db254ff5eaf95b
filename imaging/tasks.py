"""Ingest work in the background: each task carries its institution's schema (tenant-schemas-celery)
and an id, and calls one service; running one twice does no harm."""

from __future__ import annotations

import random

from celery import Task, shared_task

# A whole CD (thousands of files) is ingested in one task; past the soft limit it stops where it
# is and the stalled-upload sweep queues the rest again.
# Storage failing under an ingest (disk full, object store down) is retried with a growing
# delay (with jitter) for about an hour; the uploads stay RECEIVED meanwhile, so past that the
# stalled-upload sweep goes on queueing them every few minutes until storage is back.
INGEST_STORAGE_RETRIES = 8
INGEST_STORAGE_BACKOFF_MAX = 900


def ingest_retry_delay(retries: int) -> float:
    base = min(INGEST_STORAGE_BACKOFF_MAX, 15 * 2**retries)
    return float(base / 2 + random.uniform(0, base / 2))  # noqa: S311 (jitter, not a secret)


@shared_task(
    bind=True,
    name="imaging.upload_ingest",
    ignore_result=True,
    max_retries=INGEST_STORAGE_RETRIES,
    soft_time_limit=1800,
    time_limit=1860,
)
def upload_ingest(self: Task, upload_id: int) -> None:
    """Ingest a complete upload, and with it a batch of its case's other waiting imaging uploads
    (a folder drop). Claims them first: the tasks of uploads already claimed, and a second
    delivery of this one, do nothing."""
    from imaging.ingest.pipeline import upload_ingest_run
    from storage.base import StorageUnavailable

    try:
        upload_ingest_run(upload_id=upload_id)
    except StorageUnavailable as exc:
        if self.request.retries >= INGEST_STORAGE_RETRIES:
            return  # still RECEIVED: the stalled-upload sweep queues it again
        raise self.retry(countdown=ingest_retry_delay(self.request.retries), exc=exc) from None


@shared_task(name="imaging.series_preview", ignore_result=True, soft_time_limit=300, time_limit=330)
def series_preview(series_id: int) -> None:
    """Draw a series' preview if it has none yet or grew since the last one (idempotent)."""
    from imaging.ingest.preview import series_preview_ensure

    series_preview_ensure(series_id=series_id)


@shared_task(
    name="imaging.uploads_ingest_resume_all", ignore_result=True, soft_time_limit=600, time_limit=660
)
def uploads_ingest_resume_all(after: str = "") -> None:
    """Beat publishes from the public schema: re-queue stalled uploads in the next batch of
    institutions after ``after``, then queue the rest of the sweep (tenants.sweeps)."""
    from imaging.ingest.pipeline import uploads_stalled_requeue
    from tenants.sweeps import institutions_sweep

    last = institutions_sweep(after=after, work=uploads_stalled_requeue)
    if last is not None:
        uploads_ingest_resume_all.delay(last)


@shared_task(name="imaging.uploads_ingest_resume", ignore_result=True, soft_time_limit=300, time_limit=330)
def uploads_ingest_resume() -> int:
    """Queue ingest again for this schema's stalled uploads (see the service)."""
    from imaging.ingest.pipeline import uploads_stalled_requeue

    return uploads_stalled_requeue()
