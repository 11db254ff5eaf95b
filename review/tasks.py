from __future__ import annotations

from celery import shared_task


@shared_task(name="review.follow_up_answer_email", ignore_result=True, soft_time_limit=60, time_limit=90)
def follow_up_answer_email(question_id: int) -> None:
    """Email the patient that their follow-up question was answered (runs in the case's schema;
    claims the question first: a second delivery sends nothing)."""
    from review.notifications import follow_up_answer_email_send

    follow_up_answer_email_send(question_id=question_id)
