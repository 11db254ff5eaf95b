from __future__ import annotations

from celery import shared_task


@shared_task(name="review.follow_up_answer_email", ignore_result=True, soft_time_limit=60, time_limit=90)
def follow_up_answer_email(question_id: int) -> None:
    """Email the patient that their follow-up question was answered (runs in the case's schema;
    claims the question first: a second delivery sends nothing)."""
    from review.notifications import follow_up_answer_email_send

    follow_up_answer_email_send(question_id=question_id)


@shared_task(name="review.cases_due_notify_all", ignore_result=True, soft_time_limit=600, time_limit=660)
def cases_due_notify_all(after: str = "") -> None:
    """Due-tomorrow and overdue notices in the next batch of institutions after ``after``;
    queue the rest of the sweep (daily; a second run the same day writes nothing)."""
    from review.staff_notifications import cases_due_notify
    from tenants.sweeps import institutions_sweep

    last = institutions_sweep(after=after, work=cases_due_notify)
    if last is not None:
        cases_due_notify_all.delay(last)
