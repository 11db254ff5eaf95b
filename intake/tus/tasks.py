"""Expiring unfinished uploads (tus expiration extension), run by Celery beat.

Beat publishes from the public schema; the hourly task walks the institutions in batches
(tenants.sweeps), expiring each one's uploads in its schema.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="intake.tus.uploads_expire_all", ignore_result=True, soft_time_limit=600, time_limit=660)
def uploads_expire_all(after: str = "") -> None:
    """Expire unfinished uploads in the next batch of institutions after ``after``, then queue
    the rest of the sweep."""
    from intake.tus.services import uploads_expired_cleanup
    from tenants.sweeps import institutions_sweep

    last = institutions_sweep(after=after, work=uploads_expired_cleanup)
    if last is not None:
        uploads_expire_all.delay(last)


# Beat no longer queues this one (uploads_expire_all does the work in batches); when it is queued
# by hand its caller reads the count, so its result is kept (briefly: CELERY_RESULT_EXPIRES).
@shared_task(name="intake.tus.uploads_expire", ignore_result=False, soft_time_limit=300, time_limit=330)
def uploads_expire() -> int:
    """Expire the current schema's unfinished uploads past their time (safe to run twice)."""
    from intake.tus.services import uploads_expired_cleanup

    return uploads_expired_cleanup()
