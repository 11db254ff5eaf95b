"""What the payment services share: the sentences people read, the refusal they raise, and
queueing a notice once the change commits."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_noop
from django_tenants.utils import schema_context

from tenants.schema import current_schema_name

logger = logging.getLogger(__name__)


# Sentences people read (reused by the tests).
CHECKOUT_NOT_AVAILABLE = gettext_noop(
    "Online payment is not set up at this institution yet. If you were given a waiver code, "
    "enter it below; otherwise please contact the institution."
)
CHECKOUT_WAIVERS_ONLY = gettext_noop(
    "This institution takes its fee with waiver codes only. Enter the code it gave you below; "
    "if you have none, please contact the institution."
)
CHECKOUT_NOTHING_TO_PAY = gettext_noop("There is nothing to pay for this case.")
CHECKOUT_PROCESSING = gettext_noop("Your payment is being confirmed. There is no need to pay again.")
CHECKOUT_STRIPE_ERROR = gettext_noop(
    "We could not reach the payment service, and nothing was charged. Please try again in a few minutes."
)
CASE_NOT_PAYABLE = gettext_noop("This case cannot be paid for in its current state.")
# One answer for every refused code (unknown, withdrawn, expired, used up): a guesser learns
# nothing about which codes exist.
WAIVER_REFUSED = gettext_noop("This code cannot be used. Please check it, or ask whoever gave it to you.")
WAIVER_UNKNOWN = WAIVER_EXPIRED = WAIVER_USED_UP = WAIVER_REFUSED
WAIVER_APPLIED = gettext_noop("The fee is waived for this case.")
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
REFUND_REQUESTED = (
    "The payment of {amount} is being refunded through Stripe; the patient is emailed once Stripe "
    "confirms it."
)
REFUND_RETRYING = (
    "Stripe could not be reached to refund this payment. It is tried again automatically; "
    "nothing needs doing yet."
)


class PaymentError(Exception):
    """A refusal a person can act on; ``message`` is one of the constants above."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def enqueue_after_commit(task: Any, payment_id: int) -> None:
    """Queue ``task(payment_id)`` once the transaction commits, in this schema: the schema is
    fixed now, because the commit may happen after a webhook's tenant context was left."""
    schema = current_schema_name()

    def enqueue() -> None:
        with schema_context(schema):
            task.delay(payment_id)

    transaction.on_commit(enqueue)
