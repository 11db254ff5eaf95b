"""Refunds: a declined or withdrawn case's card payment returned through the institution's
Stripe account, and Stripe's word that a payment was refunded.

A refund is an intent first: ``case_refund`` runs in the transaction of the change that causes
it (the decline, the withdrawal) and writes a ``stripe_refund`` outbox message beside it, so the
refund is asked for if and only if that change commits, and Stripe is never called while a
transaction or a row lock is held. The outbox's worker then calls ``refund_deliver``: Stripe's
idempotency key (one per payment) makes a second run, or a retry after a lost answer, return the
same refund instead of making another. The patient is told once Stripe has said yes; a refusal
is left for staff to see (on the payment and in the institution's failed deliveries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from intake.models import Case
from outbox.deliverers import DeliveryRefused
from outbox.services import enqueue
from payments.connect.models import StripeAccount
from payments.models import Payment
from payments.money import money_format
from payments.services.common import (
    REFUND_ALREADY_DONE,
    REFUND_NO_ACCOUNT,
    REFUND_NOTHING_PAID,
    REFUND_REQUESTED,
    REFUND_RETRYING,
    REFUND_STRIPE_REFUSED,
)
from payments.stripe_api import stripe_client, stripe_configured
from tenants.schema import current_schema_name

logger = logging.getLogger(__name__)

STRIPE_REFUND = "stripe_refund"  # the outbox kind


@dataclass(frozen=True)
class RefundOutcome:
    """What happens to the money of a case being declined or withdrawn; ``message`` is for
    staff, and ``staff_must_act`` says it is a refund staff have to make themselves."""

    refunded: bool
    amount: int
    message: str
    staff_must_act: bool = False


def refund_idempotency_key(payment: Payment) -> str:
    return f"refund-{payment.public_id}"


def case_refund(*, case: Case, reason: str) -> RefundOutcome:
    """Ask for the case's card payment to be refunded in full through the institution's Stripe
    account (the outbox's worker makes the refund after commit, see ``refund_deliver``), or
    record on the payment why it cannot be done automatically.

    Precondition: called inside the transaction of the change that makes the refund due, so the
    request is kept only if that change commits. Safe to call twice: the second call asks
    nothing new. ``reason`` is kept for staff (it may describe the case, so it is neither sent
    to Stripe nor logged)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(case=case).first()
        if payment is None or payment.amount_paid == 0:
            return RefundOutcome(refunded=False, amount=0, message=REFUND_NOTHING_PAID)
        if payment.status == Payment.Status.REFUNDED:
            return RefundOutcome(refunded=True, amount=payment.amount_refunded, message=REFUND_ALREADY_DONE)
        if payment.status != Payment.Status.PAID or not payment.payment_intent_id:
            return RefundOutcome(refunded=False, amount=0, message=REFUND_NOTHING_PAID)
        if _account_of(payment) is None or not stripe_configured():
            _note_save(payment, REFUND_NO_ACCOUNT)
            return RefundOutcome(refunded=False, amount=0, message=REFUND_NO_ACCOUNT, staff_must_act=True)
        remaining = payment.amount_paid - payment.amount_refunded
        # For staff (the payments page, the outbox): in English, whoever's request refunds it.
        amount_text = money_format(
            amount=remaining, currency=payment.currency, language=settings.LANGUAGE_CODE
        )
        enqueue(
            kind=STRIPE_REFUND,
            key=f"stripe-refund:{payment.public_id}",
            payload={"payment_id": payment.pk, "amount": remaining},
            summary=f"Card refund of {amount_text} (case {case.number or 'unnumbered'})",
        )
        message = REFUND_REQUESTED.format(amount=amount_text)
        _note_save(payment, message)
    return RefundOutcome(refunded=False, amount=remaining, message=message)


def refund_deliver(payload: dict[str, Any]) -> None:
    """The outbox deliverer of ``stripe_refund``: make the refund at Stripe, then record it and
    queue the patient's notice. Raises (retried later) when Stripe cannot be reached or fails on
    its side; raises ``DeliveryRefused`` (given up at once, shown to staff) when Stripe refuses.

    Precondition (the outbox's): no transaction open, so the Stripe call holds no lock."""
    payment = Payment.objects.get(pk=payload["payment_id"])
    if payment.status != Payment.Status.PAID:
        return  # refunded meanwhile (by us, or in the Stripe dashboard), or never paid
    account = _account_of(payment)
    if account is None or not stripe_configured():
        _note_save(payment, REFUND_NO_ACCOUNT)
        raise DeliveryRefused("no connected Stripe account")
    try:
        refund = stripe_client().v1.refunds.create(
            params={
                "payment_intent": payment.payment_intent_id,
                "amount": payload["amount"],
                "reason": "requested_by_customer",
                "metadata": {"payment": str(payment.public_id), "schema": current_schema_name()},
            },
            # The same key for every attempt: Stripe answers a repeat with the first refund.
            options={
                "stripe_account": account.account_id,
                "idempotency_key": refund_idempotency_key(payment),
            },
        )
    except stripe.StripeError as exc:
        if _worth_retrying(exc):
            _note_save(payment, REFUND_RETRYING)
            raise
        detail = getattr(exc, "user_message", None) or type(exc).__name__
        _note_save(payment, REFUND_STRIPE_REFUSED.format(detail=detail))
        logger.warning(
            "stripe refund refused", extra={"event": "payments.refund_refused", "status": type(exc).__name__}
        )
        raise DeliveryRefused(type(exc).__name__) from exc
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        payment_mark_refunded(payment=payment, amount_refunded=payment.amount_paid, refund_id=refund.id)


def _worth_retrying(exc: stripe.StripeError) -> bool:
    """Stripe unreachable, rate-limited, busy with the same key, or failing on its side: try
    again later. Any other answer (a 4xx) is Stripe's final word."""
    status = exc.http_status
    return status is None or status >= 500 or status in (409, 429)


def _account_of(payment: Payment) -> StripeAccount | None:
    return StripeAccount.objects.filter(
        account_id=payment.stripe_account_id, disconnected_at__isnull=True
    ).first()


def _note_save(payment: Payment, note: str) -> None:
    Payment.objects.filter(pk=payment.pk).update(refund_note=note[:500], updated=timezone.now())
    payment.refund_note = note[:500]


def payment_mark_refunded(*, payment: Payment, amount_refunded: int, refund_id: str = "") -> bool:
    """Record a refund (ours, or one made in the Stripe dashboard); precondition: ``payment``
    is locked. The patient is told once, when the payment first becomes fully refunded.
    Returns whether anything changed."""
    amount_refunded = min(max(amount_refunded, payment.amount_refunded), payment.amount_paid)
    if amount_refunded == payment.amount_refunded and payment.status == Payment.Status.REFUNDED:
        return False
    payment.amount_refunded = amount_refunded
    payment.refund_id = refund_id or payment.refund_id
    payment.refund_note = ""
    fully = amount_refunded >= payment.amount_paid
    newly_refunded = fully and payment.status != Payment.Status.REFUNDED
    if newly_refunded:
        payment.status = Payment.Status.REFUNDED
        payment.refunded_at = timezone.now()
    payment.save(
        update_fields=["amount_refunded", "refund_id", "refund_note", "status", "refunded_at", "updated"]
    )
    if newly_refunded:
        from payments.notifications import payment_refund_notice_send

        payment_refund_notice_send(payment_id=payment.pk)  # to the outbox, in this transaction
    return True
