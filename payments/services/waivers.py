"""Waiver codes: created and withdrawn by staff, applied by a patient in place of the fee."""

from __future__ import annotations

import datetime
import logging
import secrets

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from intake.models import Case
from payments.models import CheckoutAttempt, Payment, WaiverCode
from payments.services.checkout import checkout_session_expire
from payments.services.common import (
    CASE_NOT_PAYABLE,
    CHECKOUT_NOTHING_TO_PAY,
    CHECKOUT_PROCESSING,
    WAIVER_CODE_TAKEN,
    WAIVER_EXPIRED,
    WAIVER_UNKNOWN,
    WAIVER_USED_UP,
    PaymentError,
)
from payments.services.pricing import case_to_queue_if_waiting, payment_quote_ensure

logger = logging.getLogger(__name__)


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
        case_to_queue_if_waiting(case=case)
    # A Checkout page still open in another tab must not take money for a waived case.
    for session_id in open_sessions:
        checkout_session_expire(session_id=session_id, account_id=account_id)
    return payment
