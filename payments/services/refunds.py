"""Refunds: a declined case's card payment returned through the institution's Stripe account,
and Stripe's word that a payment was refunded."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import stripe
from django.db import transaction
from django.utils import timezone

from intake.models import Case
from payments.connect.models import StripeAccount
from payments.models import Payment
from payments.money import money_format
from payments.services.common import (
    REFUND_ALREADY_DONE,
    REFUND_DONE,
    REFUND_NO_ACCOUNT,
    REFUND_NOTHING_PAID,
    REFUND_STRIPE_REFUSED,
)
from payments.stripe_api import stripe_client, stripe_configured
from tenants.schema import current_schema_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefundOutcome:
    """What happened to the money of a case being declined; ``message`` is for staff."""

    refunded: bool
    amount: int
    message: str


def case_refund(*, case: Case, reason: str) -> RefundOutcome:
    """Refund the case's card payment in full through the institution's Stripe account and
    tell the patient; or record, on the payment, why it could not be done.

    Safe to call twice: the second call finds the payment refunded. ``reason`` is kept for
    staff (it may describe the case, so it is not sent to Stripe or logged).
    """
    payment = Payment.objects.filter(case=case).first()
    if payment is None or payment.amount_paid == 0:
        return RefundOutcome(refunded=False, amount=0, message=REFUND_NOTHING_PAID)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status == Payment.Status.REFUNDED:
            return RefundOutcome(refunded=True, amount=payment.amount_refunded, message=REFUND_ALREADY_DONE)
        if payment.status != Payment.Status.PAID or not payment.payment_intent_id:
            return RefundOutcome(refunded=False, amount=0, message=REFUND_NOTHING_PAID)
        account = StripeAccount.objects.filter(
            account_id=payment.stripe_account_id, disconnected_at__isnull=True
        ).first()
        if account is None or not stripe_configured():
            payment.refund_note = REFUND_NO_ACCOUNT
            payment.save(update_fields=["refund_note", "updated"])
            return RefundOutcome(refunded=False, amount=0, message=REFUND_NO_ACCOUNT)
        remaining = payment.amount_paid - payment.amount_refunded
        try:
            refund = stripe_client().v1.refunds.create(
                params={
                    "payment_intent": payment.payment_intent_id,
                    "amount": remaining,
                    "reason": "requested_by_customer",
                    "metadata": {"case": str(case.public_id), "schema": current_schema_name()},
                },
                options={
                    "stripe_account": account.account_id,
                    "idempotency_key": f"refund-{payment.public_id}",
                },
            )
        except stripe.StripeError as exc:
            detail = getattr(exc, "user_message", None) or type(exc).__name__
            message = REFUND_STRIPE_REFUSED.format(detail=detail)
            payment.refund_note = message[:500]
            payment.save(update_fields=["refund_note", "updated"])
            logger.warning("stripe refund refused: %s", type(exc).__name__)
            return RefundOutcome(refunded=False, amount=0, message=message)
        payment_mark_refunded(payment=payment, amount_refunded=payment.amount_paid, refund_id=refund.id)
    amount_text = money_format(amount=remaining, currency=payment.currency)
    return RefundOutcome(refunded=True, amount=remaining, message=REFUND_DONE.format(amount=amount_text))


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
