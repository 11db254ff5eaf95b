"""Prices, waiver codes, checkout, refunds and the Stripe connection of an institution.

Everything runs in the current institution's schema (the request's, or the one a webhook was
routed to). Stripe is called with the platform's key on the institution's connected account
(``stripe_account=``); a case only reaches the review queue when a signed webhook confirms the
payment (``payments.webhooks``), never because a patient came back from Checkout.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import stripe
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from intake.models import Case
from intake.status import case_status_change
from payments.connect.models import StripeAccount
from payments.models import CheckoutAttempt, Payment, WaiverCode
from payments.money import money_format
from payments.selectors import (
    institution_current,
    payment_setup_get,
    price_quote_current,
    stripe_account_current,
)
from payments.stripe_api import stripe_client, stripe_configured
from tenants.models import Institution
from tenants.schema import current_schema_name

logger = logging.getLogger(__name__)

# Sentences people read (reused by the tests).
CHECKOUT_NOT_AVAILABLE = (
    "Online payment is not set up at this institution yet. If you were given a waiver code, "
    "enter it below; otherwise please contact the institution."
)
CHECKOUT_NOTHING_TO_PAY = "There is nothing to pay for this case."
CHECKOUT_PROCESSING = "Your payment is being confirmed. There is no need to pay again."
CHECKOUT_STRIPE_ERROR = (
    "We could not reach the payment service, and nothing was charged. Please try again in a few minutes."
)
CASE_NOT_PAYABLE = "This case cannot be paid for in its current state."
# One answer for every refused code (unknown, withdrawn, expired, used up): a guesser learns
# nothing about which codes exist.
WAIVER_REFUSED = "This code cannot be used. Please check it, or ask whoever gave it to you."
WAIVER_UNKNOWN = WAIVER_EXPIRED = WAIVER_USED_UP = WAIVER_REFUSED
WAIVER_APPLIED = "The fee is waived for this case."
WAIVER_CODE_TAKEN = "There is already a waiver code with these letters."
CONNECT_NOT_CONFIGURED = (
    "Online payment is not set up on this SecondRead platform (no Stripe key). Patients can "
    "only proceed with a waiver code. Ask the platform operator to configure Stripe."
)
CONNECT_STRIPE_ERROR = "Stripe did not answer. Nothing was changed; please try again in a few minutes."
REFUND_NOTHING_PAID = "No card payment was taken for this case, so there is nothing to refund."
REFUND_ALREADY_DONE = "This payment was already refunded."
REFUND_NO_ACCOUNT = (
    "The payment could not be refunded automatically because the Stripe account it was paid into "
    "is no longer connected. Please refund it from your Stripe dashboard."
)
REFUND_STRIPE_REFUSED = "Stripe refused the refund ({detail}). Please refund it from your Stripe dashboard."
REFUND_DONE = "The payment of {amount} was refunded to the patient."


class PaymentError(Exception):
    """A refusal a person can act on; ``message`` is one of the constants above."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Price ---------------------------------------------------------------------------------


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


def _case_to_queue_if_waiting(*, case: Case) -> None:
    """A settled fee releases a case that was waiting for it into the review queue (once:
    case_status_change does nothing, and sends no email, when the status is already set)."""
    case.refresh_from_db(fields=["status"])
    if case.status == Case.Status.AWAITING_PAYMENT:
        case_status_change(case=case, status=Case.Status.SUBMITTED)


# --- Checkout ---------------------------------------------------------------------------------


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
        reference = str(case.public_id)
        metadata = {"case": reference, "schema": current_schema_name(), "payment": str(payment.public_id)}
        try:
            session = stripe_client().v1.checkout.sessions.create(
                params={
                    "mode": "payment",
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": payment.currency,
                                "unit_amount": payment.amount,
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
                    "idempotency_key": f"checkout-{payment.public_id}-{attempt_number}",
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
        CheckoutAttempt.objects.create(
            payment=payment,
            session_id=session.id,
            url=session.url or "",
            amount=payment.amount,
            currency=payment.currency,
            expires_at=expires_at,
        )
        payment.stripe_account_id = account_id
        payment.status = Payment.Status.UNPAID
        payment.failure_message = ""
        payment.save(update_fields=["stripe_account_id", "status", "failure_message", "updated"])
    return session.url or ""


# --- Waiver codes -----------------------------------------------------------------------------


def waiver_code_normalise(code: str) -> str:
    return "".join(code.split()).upper()


# Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or copied by hand survives.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
WAIVER_CODE_GROUPS = 4  # 4 groups of 4 characters: 16 × 5 = 80 random bits


def waiver_code_generate() -> str:
    """A new random code such as ``7K3M-Q9XD-2HPA-WN4R`` (80 bits: not guessable by trying)."""
    groups = ("".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(WAIVER_CODE_GROUPS))
    return "-".join(groups)


def waiver_code_create(
    *,
    code: str,
    purpose: str,
    max_uses: int | None,
    expires_at: datetime.datetime | None,
    by: User | None,
) -> WaiverCode:
    normalised = waiver_code_normalise(code) or waiver_code_generate()
    if WaiverCode.objects.filter(code=normalised).exists():
        raise PaymentError(WAIVER_CODE_TAKEN)
    return WaiverCode.objects.create(
        code=normalised, purpose=purpose, max_uses=max_uses, expires_at=expires_at, created_by=by
    )


def waiver_code_deactivate(*, waiver: WaiverCode) -> WaiverCode:
    waiver.active = False
    waiver.save(update_fields=["active"])
    return waiver


def _waiver_refusal(waiver: WaiverCode | None, now: datetime.datetime) -> str | None:
    if waiver is None or not waiver.active:
        return WAIVER_UNKNOWN
    if waiver.expires_at is not None and waiver.expires_at <= now:
        return WAIVER_EXPIRED
    if waiver.max_uses is not None and waiver.uses >= waiver.max_uses:
        return WAIVER_USED_UP
    return None


def waiver_apply(*, case: Case, code: str) -> Payment:
    """Settle the case's fee with a waiver code, counting one use of the code.

    Codes live in the institution's schema, so another institution's code is simply unknown
    here. The use is counted with a conditional UPDATE (still active, unexpired, below the
    limit), so the last use of a limited code goes to exactly one patient. Raises PaymentError.
    """
    if case.status not in (Case.Status.DRAFT, Case.Status.AWAITING_PAYMENT):
        raise PaymentError(CASE_NOT_PAYABLE)
    payment = payment_quote_ensure(case=case)
    now = timezone.now()
    normalised = waiver_code_normalise(code)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.is_settled:
            raise PaymentError(CHECKOUT_NOTHING_TO_PAY)
        if payment.status == Payment.Status.PROCESSING:
            raise PaymentError(CHECKOUT_PROCESSING)
        waiver = WaiverCode.objects.filter(code=normalised).first() if normalised else None
        refusal = _waiver_refusal(waiver, now)
        if refusal is not None or waiver is None:
            raise PaymentError(refusal or WAIVER_UNKNOWN)
        claimed = (
            WaiverCode.objects.filter(pk=waiver.pk, active=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
            .update(uses=F("uses") + 1)
        )
        if not claimed:  # someone took the last use (or the code changed) since we read it
            waiver.refresh_from_db()
            raise PaymentError(_waiver_refusal(waiver, now) or WAIVER_USED_UP)
        payment.status = Payment.Status.WAIVED
        payment.waiver = waiver
        payment.failure_message = ""
        payment.save(update_fields=["status", "waiver", "failure_message", "updated"])
        open_sessions = list(
            payment.attempts.filter(status=CheckoutAttempt.Status.OPEN).values_list("session_id", flat=True)
        )
        account_id = payment.stripe_account_id
        _case_to_queue_if_waiting(case=case)
    # A Checkout page still open in another tab must not take money for a waived case.
    for session_id in open_sessions:
        _checkout_session_expire(session_id=session_id, account_id=account_id)
    return payment


def _checkout_session_expire(*, session_id: str, account_id: str) -> None:
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


# --- Refunds ----------------------------------------------------------------------------------


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
        from payments.tasks import payment_refund_notice

        _enqueue_after_commit(payment_refund_notice, payment.pk)
    return True


def _enqueue_after_commit(task: Any, payment_id: int) -> None:
    """Queue ``task(payment_id)`` once the transaction commits, in this schema: the schema is
    fixed now, because the commit may happen after a webhook's tenant context was left."""
    schema = current_schema_name()

    def enqueue() -> None:
        with schema_context(schema):
            task.delay(payment_id)

    transaction.on_commit(enqueue)


# --- Confirmations from Stripe (called by payments.webhooks, payment row locked) ---------------


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
    _case_to_queue_if_waiting(case=payment.case)
    from payments.tasks import payment_receipt

    _enqueue_after_commit(payment_receipt, payment.pk)
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


PAYMENT_FAILED_DEFAULT = "Your bank did not confirm the payment. Nothing was charged; you can try again."


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


# --- Stripe connection ------------------------------------------------------------------------


def stripe_account_connect_start(*, institution: Institution, return_url: str, refresh_url: str) -> str:
    """The Stripe-hosted onboarding URL for the institution's own (Standard) account.

    The first time, a Standard account is created for the institution; afterwards a fresh
    onboarding link for the same account is made (links are single-use and short-lived).
    """
    if not stripe_configured():
        raise PaymentError(CONNECT_NOT_CONFIGURED)
    client = stripe_client()
    account = stripe_account_current(institution=institution)
    try:
        if account is None:
            earlier = StripeAccount.objects.filter(institution=institution).count()
            created = client.v1.accounts.create(
                params={"type": "standard", "metadata": {"institution": institution.slug}},
                options={"idempotency_key": f"connect-{institution.schema_name}-{earlier + 1}"},
            )
            account = StripeAccount.objects.create(
                institution=institution,
                account_id=created.id,
                charges_enabled=bool(getattr(created, "charges_enabled", False)),
                details_submitted=bool(getattr(created, "details_submitted", False)),
                payouts_enabled=bool(getattr(created, "payouts_enabled", False)),
            )
        link = client.v1.account_links.create(
            params={
                "account": account.account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
    except stripe.StripeError as exc:
        logger.warning("stripe connect not started: %s", type(exc).__name__)
        raise PaymentError(CONNECT_STRIPE_ERROR) from exc
    return str(link.url)


def stripe_account_sync(*, account: StripeAccount) -> StripeAccount:
    """Ask Stripe for the account's state now (after onboarding, or the admin's "refresh")."""
    if not stripe_configured():
        raise PaymentError(CONNECT_NOT_CONFIGURED)
    try:
        remote = stripe_client().v1.accounts.retrieve(account.account_id)
    except stripe.StripeError as exc:
        logger.warning("stripe account not retrieved: %s", type(exc).__name__)
        raise PaymentError(CONNECT_STRIPE_ERROR) from exc
    account.charges_enabled = bool(getattr(remote, "charges_enabled", False))
    account.details_submitted = bool(getattr(remote, "details_submitted", False))
    account.payouts_enabled = bool(getattr(remote, "payouts_enabled", False))
    account.synced_at = timezone.now()
    account.save(update_fields=["charges_enabled", "details_submitted", "payouts_enabled", "synced_at"])
    return account


def stripe_account_state_apply(
    *,
    account: StripeAccount,
    charges_enabled: bool,
    details_submitted: bool,
    payouts_enabled: bool,
    created: int,
) -> bool:
    """Apply an ``account.updated`` event unless a newer one was applied already."""
    if created < account.last_event_created:
        return False
    account.charges_enabled = charges_enabled
    account.details_submitted = details_submitted
    account.payouts_enabled = payouts_enabled
    account.last_event_created = created
    account.synced_at = timezone.now()
    account.save(
        update_fields=[
            "charges_enabled",
            "details_submitted",
            "payouts_enabled",
            "last_event_created",
            "synced_at",
        ]
    )
    return True


def stripe_account_disconnect(*, account: StripeAccount) -> StripeAccount:
    """Stop taking payments through the account. The Stripe account stays the institution's
    (Standard accounts belong to them); earlier payments stay refundable from its dashboard."""
    if account.disconnected_at is None:
        account.disconnected_at = timezone.now()
        account.charges_enabled = False
        account.save(update_fields=["disconnected_at", "charges_enabled"])
    return account
