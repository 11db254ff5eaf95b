"""The price of a case: frozen the first time the patient is shown it, and whether the case
still waits for it."""

from __future__ import annotations

import logging

from intake.models import Case
from intake.status import case_status_change
from payments.models import Payment
from payments.selectors import institution_current, price_quote_current

logger = logging.getLogger(__name__)


def payment_quote_ensure(*, case: Case) -> Payment:
    """The case's payment record, created with today's price the first time the patient is
    shown it. Call it when the price is shown (the wizard's start and payment step): from
    then on, what the patient pays no longer follows changes of the fee."""
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


def case_payment_required(*, case: Case) -> bool:
    """Whether the case still waits for a fee (paid, waived or free cases do not).

    The wizard asks this from its first step on, so the first answer for a case still being
    prepared freezes the price it was shown (``payment_quote_ensure``). A payment being
    confirmed (PROCESSING) still counts as required: only Stripe's webhook settles it. A case
    past submission that never had a fee needs none.
    """
    if case.status in (Case.Status.DRAFT, Case.Status.AWAITING_PAYMENT):
        return not payment_quote_ensure(case=case).is_settled
    payment = Payment.objects.filter(case=case).first()
    return payment is not None and not payment.is_settled


def case_to_queue_if_waiting(*, case: Case) -> None:
    """A settled fee releases a case that was waiting for it into the review queue (once:
    case_status_change does nothing, and sends no email, when the status is already set)."""
    case.refresh_from_db(fields=["status"])
    if case.status == Case.Status.AWAITING_PAYMENT:
        case_status_change(case=case, status=Case.Status.SUBMITTED)
