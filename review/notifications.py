"""Branded emails from the review workspace to patients."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from branding.emails import branded_email_send
from intake.notifications import recipient_key
from intake.recipients import case_recipients
from review.models import FollowUpQuestion
from tenants.schema import current_institution

logger = logging.getLogger(__name__)

FOLLOW_UP_ANSWERED_SUBJECT = gettext_lazy("Your question has been answered")


def follow_up_answer_email_send(*, question_id: int) -> bool:
    """Tell the patient an answer to their follow-up question is waiting, once per answer.

    The question is claimed with a conditional UPDATE and the email written to the outbox, in
    one transaction (the caller's, when there is one), so a second call sends nothing. Neither
    the question nor the answer goes into the email or the logs: the patient reads them signed
    in. Returns whether an email was sent."""
    with transaction.atomic():
        claimed = FollowUpQuestion.objects.filter(
            pk=question_id, answered_at__isnull=False, answer_emailed_at__isnull=True
        ).update(answer_emailed_at=timezone.now())
        if not claimed:
            return False
        _send(question_id=question_id)
    logger.info("follow-up answer emailed", extra={"question_id": question_id})
    return True


def _send(*, question_id: int) -> None:
    question = FollowUpQuestion.objects.select_related("case__owner").get(pk=question_id)
    case = question.case
    institution = current_institution()
    answered_at = question.answered_at.isoformat() if question.answered_at else ""
    for recipient in case_recipients(case=case):
        branded_email_send(
            institution=institution,
            to=[recipient.address],
            subject=format_lazy("{} ({})", FOLLOW_UP_ANSWERED_SUBJECT, case.number)
            if case.number
            else FOLLOW_UP_ANSWERED_SUBJECT,
            template="review/email/follow_up_answered",
            context={
                "case": case,
                "recipient": recipient,
                # Relative to the portal's root (the template joins it to portal_url).
                "opinion_path": reverse(
                    "review:patient_opinion", args=[case.public_id], urlconf=settings.ROOT_URLCONF
                ).lstrip("/"),
            },
            dedupe_key=f"follow-up-answer:{question_id}:{answered_at}:{recipient_key(recipient)}",
            language=recipient.language,
        )
