"""Prices, waiver codes, checkout, refunds and the Stripe connection of an institution.

Everything runs in the current institution's schema (the request's, or the one a webhook was
routed to). Stripe is called with the platform's key on the institution's connected account
(``stripe_account=``); a case only reaches the review queue when a signed webhook confirms the
payment (``payments.webhooks``), never because a patient came back from Checkout.

One module per area: ``pricing``, ``checkout`` (and Stripe's confirmations), ``waivers``,
``refunds``, ``connect``; ``common`` holds the sentences people read and :class:`PaymentError`.
Callers import from ``payments.services``.
"""

from __future__ import annotations

from payments.services.checkout import (
    PAYMENT_FAILED_DEFAULT,
    checkout_attempt_mark_expired,
    checkout_session_expire,
    checkout_start,
    payment_mark_failed,
    payment_mark_paid,
    payment_mark_processing,
)
from payments.services.common import (
    CASE_NOT_PAYABLE,
    CHECKOUT_NOT_AVAILABLE,
    CHECKOUT_NOTHING_TO_PAY,
    CHECKOUT_PROCESSING,
    CHECKOUT_STRIPE_ERROR,
    CHECKOUT_WAIVERS_ONLY,
    CONNECT_NOT_CONFIGURED,
    CONNECT_STRIPE_ERROR,
    REFUND_ALREADY_DONE,
    REFUND_NO_ACCOUNT,
    REFUND_NOTHING_PAID,
    REFUND_REQUESTED,
    REFUND_RETRYING,
    REFUND_STRIPE_REFUSED,
    WAIVER_APPLIED,
    WAIVER_CODE_TAKEN,
    WAIVER_EXPIRED,
    WAIVER_REFUSED,
    WAIVER_UNKNOWN,
    WAIVER_USED_UP,
    PaymentError,
    enqueue_after_commit,
)
from payments.services.connect import (
    stripe_account_connect_start,
    stripe_account_disconnect,
    stripe_account_state_apply,
    stripe_account_sync,
)
from payments.services.pricing import (
    case_payment_required,
    case_to_queue_if_waiting,
    draft_payment_discard,
    payment_quote_ensure,
)
from payments.services.refunds import (
    STRIPE_REFUND,
    RefundOutcome,
    case_refund,
    payment_mark_refunded,
    refund_deliver,
)
from payments.services.waivers import (
    waiver_apply,
    waiver_code_create,
    waiver_code_deactivate,
    waiver_code_generate,
    waiver_code_normalise,
)

__all__ = [
    "CASE_NOT_PAYABLE",
    "CHECKOUT_NOTHING_TO_PAY",
    "CHECKOUT_NOT_AVAILABLE",
    "CHECKOUT_PROCESSING",
    "CHECKOUT_STRIPE_ERROR",
    "CHECKOUT_WAIVERS_ONLY",
    "CONNECT_NOT_CONFIGURED",
    "CONNECT_STRIPE_ERROR",
    "PAYMENT_FAILED_DEFAULT",
    "REFUND_ALREADY_DONE",
    "REFUND_NOTHING_PAID",
    "REFUND_NO_ACCOUNT",
    "REFUND_REQUESTED",
    "REFUND_RETRYING",
    "REFUND_STRIPE_REFUSED",
    "STRIPE_REFUND",
    "WAIVER_APPLIED",
    "WAIVER_CODE_TAKEN",
    "WAIVER_EXPIRED",
    "WAIVER_REFUSED",
    "WAIVER_UNKNOWN",
    "WAIVER_USED_UP",
    "PaymentError",
    "RefundOutcome",
    "case_payment_required",
    "case_refund",
    "case_to_queue_if_waiting",
    "checkout_attempt_mark_expired",
    "checkout_session_expire",
    "checkout_start",
    "draft_payment_discard",
    "enqueue_after_commit",
    "payment_mark_failed",
    "payment_mark_paid",
    "payment_mark_processing",
    "payment_mark_refunded",
    "payment_quote_ensure",
    "refund_deliver",
    "stripe_account_connect_start",
    "stripe_account_disconnect",
    "stripe_account_state_apply",
    "stripe_account_sync",
    "waiver_apply",
    "waiver_code_create",
    "waiver_code_deactivate",
    "waiver_code_generate",
    "waiver_code_normalise",
]
