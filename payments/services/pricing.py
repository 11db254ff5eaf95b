"""The price of a case: frozen when the patient starts it, and whether the case still waits for
it."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError

from intake.models import Case
from intake.workflow import case_status_change
from payments.models import Payment
from payments.selectors import institution_current, price_quote_current

logger = logging.getLogger(__name__)


def payment_quote_ensure(*, case: Case) -> Payment:
    """The case's payment record, created with today's price the first time. Called when the
    patient starts the case (``intake.services.case_start``), at submission, and on the payment
    page: from the start on, what the patient pays no longer follows changes of the fee."""
    payment = Payment.objects.filter(case=case).first()
    if payment is not None:
        return payment
    quote = price_quote_current(institution=institution_current())
    payment, _ = Payment.objects.get_or_create(
        case=case,
        defaults={
            "amount": quote.amount,
            "currency": quote.currency,
            "status": Payment.Status.UNPAID if quote.required else Payment.Status.NOT_REQUIRED,
        },
    )
    return payment


DRAFT_HAS_MONEY = "This request has a payment in progress or made, so it cannot be deleted."


def draft_payment_discard(sender: object, *, case: Case, **kwargs: object) -> None:
    """A draft is being deleted (``intake.drafts.draft_deleting``): drop its frozen price,
    unless money moved for it (then refuse, and the draft stays)."""
    payment = Payment.objects.select_for_update().filter(case=case).first()
    if payment is None:
        return
    if payment.status in (Payment.Status.PROCESSING, Payment.Status.PAID, Payment.Status.REFUNDED) or (
        payment.amount_paid
    ):
        raise ValidationError(DRAFT_HAS_MONEY)
    payment.delete()


def case_payment_required(*, case: Case) -> bool:
    """Whether the case still waits for a fee (paid, waived or free cases do not). A read:
    nothing is written here.

    The price frozen for the case (``payment_quote_ensure``) decides; a case still being
    prepared that has none yet (made before it was frozen at the start) is asked of today's
    fee. A payment being confirmed (PROCESSING) still counts as required: only Stripe's webhook
    settles it. A case past submission that never had a fee needs none.
    """
    payment = Payment.objects.filter(case=case).first()
    if payment is not None:
        return not payment.is_settled
    if case.status in (Case.Status.DRAFT, Case.Status.AWAITING_PAYMENT):
        return price_quote_current(institution=institution_current()).required
    return False


def case_to_queue_if_waiting(*, case: Case) -> None:
    """A settled fee releases a case that was waiting for it into the review queue (once:
    case_status_change does nothing, and sends no email, when the status is already set)."""
    case.refresh_from_db(fields=["status"])
    if case.status == Case.Status.AWAITING_PAYMENT:
        case_status_change(case=case, status=Case.Status.SUBMITTED)
