from __future__ import annotations

from celery import shared_task
from django.db import transaction

from intake.models import Case
from intake.notifications import case_status_email_send


@shared_task(name="intake.case_status_email", ignore_result=True, soft_time_limit=60, time_limit=90)
def case_status_email(case_id: int, status: str, note: str = "") -> None:
    """Only for tasks a previous version queued to the broker: status emails are written to
    the outbox with the move now (intake.workflow). Emails the patient if the case is still in
    ``status``; the outbox key makes a second run send nothing."""
    with transaction.atomic():
        case = Case.objects.select_related("owner").filter(pk=case_id, status=status).first()
        if case is not None:
            case_status_email_send(case=case, note=note)


@shared_task(name="intake.drafts_purge_all", ignore_result=True, soft_time_limit=600, time_limit=660)
def drafts_purge_all(after: str = "") -> None:
    """Warn about, then delete, drafts abandoned in the next batch of institutions after
    ``after``; queue the rest of the sweep (daily, on the housekeeping queue)."""
    from intake.drafts import drafts_abandoned_purge
    from tenants.sweeps import institutions_sweep

    last = institutions_sweep(after=after, work=drafts_abandoned_purge)
    if last is not None:
        drafts_purge_all.delay(last)
