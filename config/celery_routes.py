"""Which queue each task goes to: patient-facing work ahead of housekeeping.

Workers for the patient queue (``CELERY_QUEUE``) never pick up housekeeping, which has its own
queue and worker (``CELERY_HOUSEKEEPING_QUEUE``), so a sweep across every institution never
delays an upload's ingest or an email.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

HOUSEKEEPING_TASKS = frozenset(
    {
        "imaging.uploads_ingest_resume_all",
        "imaging.uploads_ingest_resume",
        "intake.tus.uploads_expire_all",
        "intake.tus.uploads_expire",
        "tenants.institution_usage_refresh",
        "tenants.onboardings_discard_abandoned",
        "tenants.custom_domains_recheck",
        "outbox.sweep",
        "intake.drafts_purge_all",
        "review.cases_due_notify_all",
        "tenants.onboardings_recover",
    }
)


def route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str] | None:
    if name in HOUSEKEEPING_TASKS:
        return {"queue": settings.CELERY_HOUSEKEEPING_QUEUE}
    return None
