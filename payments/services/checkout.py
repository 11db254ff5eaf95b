"""Stripe Checkout: starting a payment, and settling it when Stripe's signed webhook confirms
(``payments.webhooks`` calls the ``payment_mark_*`` services with the payment row locked)."""

from __future__ import annotations

import datetime
import logging

import stripe
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from intake.models import Case
from payments.models import CheckoutAttempt, Payment
from payments.selectors import payment_setup_get
from payments.services.common import (
    CASE_NOT_PAYABLE,
    CHECKOUT_NOT_AVAILABLE,
    CHECKOUT_NOTHING_TO_PAY,
    CHECKOUT_PROCESSING,
    CHECKOUT_STRIPE_ERROR,
    PaymentError,
)
from payments.services.pricing import case_to_queue_if_waiting, payment_quote_ensure
from payments.stripe_api import stripe_client, stripe_configured
from tenants.models import Institution
from tenants.schema import current_schema_name

logger = logging.getLogger(__name__)


def checkout_start(*, case: Case, institution: Institution, success_url: str, cancel_url: str) -> str:
    """The Stripe Checkout URL to send the patient to, on the institution's own account.

    An open session of this payment is reused, so clicking "Pay" twice cannot charge twice.
    The amount is the snapshot the patient was shown. Raises PaymentError.
    """
    if case.status not in (Case.Status.DRAFT, Case.Status.AWAITING_PAYMENT):
        raise PaymentError(CASE_NOT_PAYABLE)
    setup = payment_setup_get(institution=institution)
    payment = payment_quote_ensure(case=case)
    if payment.is_settled:
        raise PaymentError(CHECKOUT_NOTHING_TO_PAY)
    if not setup.can_charge or setup.account is None:
        raise PaymentError(CHECKOUT_NOT_AVAILABLE)
    account_id = setup.account.account_id
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.is_settled:
            raise PaymentError(CHECKOUT_NOTHING_TO_PAY)
        if payment.status == Payment.Status.PROCESSING:
            raise PaymentError(CHECKOUT_PROCESSING)
        reusable = payment.attempts.filter(
            status=CheckoutAttempt.Status.OPEN,
            amount=payment.amount,
            currency=payment.currency,
            expires_at__gt=timezone.now() + datetime.timedelta(minutes=10),
        ).first()
        if reusable is not None and payment.stripe_account_id == account_id:
            return reusable.url
        attempt_number = payment.attempts.count() + 1
        amount, currency, payment_public_id = payment.amount, payment.currency, payment.public_id
    # The claim has committed: Stripe is called with no transaction or row lock held. Two clicks
    # at the same moment claim the same attempt number, hence the same idempotency key, and
    # Stripe answers both with the same session.
    reference = str(case.public_id)
    metadata = {"case": reference, "schema": current_schema_name(), "payment": str(payment_public_id)}
    try:
        session = stripe_client().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": currency,
                            "unit_amount": amount,
                            "product_data": {"name": f"Second-opinion review · {institution.name}"},
                        },
                    }
                ],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "client_reference_id": reference,
                "metadata": metadata,
                "payment_intent_data": {"metadata": metadata},
            },
            options={
                "stripe_account": account_id,
                # Same key for the same attempt: a retried request returns the same session.
                "idempotency_key": f"checkout-{payment_public_id}-{attempt_number}",
            },
        )
    except stripe.StripeError as exc:
        logger.warning("stripe checkout session not created: %s", type(exc).__name__)
        raise PaymentError(CHECKOUT_STRIPE_ERROR) from exc
    expires_at = (
        datetime.datetime.fromtimestamp(session.expires_at, tz=datetime.UTC)
        if getattr(session, "expires_at", None)
        else timezone.now() + datetime.timedelta(hours=23)
    )
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        CheckoutAttempt.objects.get_or_create(
            session_id=session.id,
            defaults={
                "payment": payment,
                "url": session.url or "",
                "amount": amount,
                "currency": currency,
                "expires_at": expires_at,
            },
        )
        # A webhook may have settled the payment meanwhile: then it keeps its state.
        if not payment.is_settled and payment.status != Payment.Status.PROCESSING:
            payment.stripe_account_id = account_id
            payment.status = Payment.Status.UNPAID
            payment.failure_message = ""
            payment.save(update_fields=["stripe_account_id", "status", "failure_message", "updated"])
    return session.url or ""


def checkout_session_expire(*, session_id: str, account_id: str) -> None:
    if not (stripe_configured() and account_id):
        return
    try:
        stripe_client().v1.checkout.sessions.expire(session_id, options={"stripe_account": account_id})
    except stripe.StripeError as exc:
        # Already expired or completed: the webhook tells us what happened.
        logger.info("checkout session not expired: %s", type(exc).__name__)
        return
    CheckoutAttempt.objects.filter(session_id=session_id, status=CheckoutAttempt.Status.OPEN).update(
        status=CheckoutAttempt.Status.EXPIRED
    )


def payment_mark_paid(
    *, payment: Payment, attempt: CheckoutAttempt, amount_paid: int, payment_intent: str
) -> bool:
    """Stripe confirmed the money: settle the payment, release the case into the queue and
    send the receipt, once. A payment already settled stays as it is. Returns whether it
    changed."""
    attempt.status = CheckoutAttempt.Status.COMPLETE
    attempt.save(update_fields=["status"])
    if payment.is_settled:
        if payment.status == Payment.Status.WAIVED:
            # Paid in a tab opened before the waiver: staff must refund it by hand.
            logger.warning(
                "checkout paid for an already waived case", extra={"object_id": str(payment.public_id)}
            )
        return False
    payment.status = Payment.Status.PAID
    payment.amount_paid = amount_paid
    payment.payment_intent_id = payment_intent or payment.payment_intent_id
    payment.paid_at = timezone.now()
    payment.failure_message = ""
    payment.save(
        update_fields=["status", "amount_paid", "payment_intent_id", "paid_at", "failure_message", "updated"]
    )
    case_to_queue_if_waiting(case=payment.case)
    from payments.notifications import payment_receipt_send

    payment_receipt_send(payment_id=payment.pk)  # to the outbox, in this transaction
    return True


def payment_mark_processing(*, payment: Payment, attempt: CheckoutAttempt, payment_intent: str) -> bool:
    """Checkout finished with a delayed method (bank debit): wait for the async result."""
    attempt.status = CheckoutAttempt.Status.COMPLETE
    attempt.save(update_fields=["status"])
    if payment.is_settled or payment.status == Payment.Status.PROCESSING:
        return False
    payment.status = Payment.Status.PROCESSING
    payment.payment_intent_id = payment_intent or payment.payment_intent_id
    payment.save(update_fields=["status", "payment_intent_id", "updated"])
    return True


PAYMENT_FAILED_DEFAULT = gettext_noop(
    "Your bank did not confirm the payment. Nothing was charged; you can try again."
)


def payment_mark_failed(*, payment: Payment, attempt: CheckoutAttempt) -> bool:
    """An asynchronous payment failed. Never un-pays: a failure reported after a success (late
    or for another attempt) leaves a settled payment alone."""
    attempt.status = CheckoutAttempt.Status.FAILED
    attempt.save(update_fields=["status"])
    if payment.is_settled:
        return False
    payment.status = Payment.Status.FAILED
    payment.failure_message = PAYMENT_FAILED_DEFAULT
    payment.save(update_fields=["status", "failure_message", "updated"])
    return True


def checkout_attempt_mark_expired(*, attempt: CheckoutAttempt) -> bool:
    if attempt.status != CheckoutAttempt.Status.OPEN:
        return False
    attempt.status = CheckoutAttempt.Status.EXPIRED
    attempt.save(update_fields=["status"])
    return True
