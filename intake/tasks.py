from __future__ import annotations

from celery import shared_task

from intake.notifications import case_status_email_send


@shared_task(name="intake.case_status_email", ignore_result=True, soft_time_limit=60, time_limit=90)
def case_status_email(case_id: int, status: str, note: str = "") -> None:
    """Email the patient about a state their case reached (runs in the case's schema)."""
    case_status_email_send(case_id=case_id, status=status, note=note)
