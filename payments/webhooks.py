"""Stripe Connect webhook events: verified, routed to the institution, applied once.

Stripe posts every event of every connected account to the platform's one endpoint. Each
event is:

1. verified (``Stripe-Signature``: HMAC-SHA256 with the endpoint secret, timestamp within
   ``WEBHOOK_TOLERANCE_SECONDS``), or refused with 400 and nothing done;
2. routed by ``event.account`` to the institution that connected that account; events for an
   account no institution owns, of a type we do not handle, or of the platform's own account
   are acknowledged (200) and ignored, so Stripe stops retrying them;
3. applied inside one transaction that also inserts its id into ``ProcessedEvent`` (unique):
   a second delivery finds the id and does nothing, and two racing deliveries serialise on the
   index;
4. checked against what the event claims: the checkout session must be one we opened, for the
   case named in its metadata, in the schema named in its metadata (the routed institution's).

Order is not guaranteed by Stripe; the payment state machine (``payments.services``) never
moves a settled payment backwards, and account updates older than the last applied one are
skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django_tenants.utils import tenant_context

from payments.connect.models import ProcessedEvent, StripeAccount
from payments.models import CheckoutAttempt, Payment
from payments.services import (
    checkout_attempt_mark_expired,
    payment_mark_failed,
    payment_mark_paid,
    payment_mark_processing,
    payment_mark_refunded,
    stripe_account_disconnect,
    stripe_account_state_apply,
)
from payments.stripe_api import WEBHOOK_TOLERANCE_SECONDS
from tenants.schema import current_schema_name

logger = logging.getLogger(__name__)

WEBHOOK_NOT_CONFIGURED = "Webhook endpoint is not configured."
WEBHOOK_BAD_SIGNATURE = "Invalid or expired signature."
WEBHOOK_BAD_PAYLOAD = "Malformed event."


class WebhookRefused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class WebhookResult:
    outcome: str  # "applied", "no_change", "duplicate", or "ignored:<why>"


Handler = Callable[[dict[str, Any], StripeAccount], str]


def _attempt_for_session(session: dict[str, Any]) -> tuple[CheckoutAttempt, Payment] | str:
    """The attempt and (locked) payment an event's checkout session belongs to, or why not.

    The session must be one we opened in this schema, and name the same case and schema."""
    metadata = session.get("metadata") or {}
    if metadata.get("schema") != current_schema_name():
        return "ignored:schema_mismatch"
    attempt = CheckoutAttempt.objects.filter(session_id=str(session.get("id", ""))).first()
    if attempt is None:
        return "ignored:unknown_session"
    payment = Payment.objects.select_for_update().select_related("case").get(pk=attempt.payment_id)
    if str(payment.case.public_id) != metadata.get("case") or session.get("client_reference_id") not in (
        None,
        str(payment.case.public_id),
    ):
        return "ignored:case_mismatch"
    return attempt, payment


def _paid_amount_matches(session: dict[str, Any], attempt: CheckoutAttempt) -> bool:
    return session.get("amount_total") == attempt.amount and str(session.get("currency", "")).lower() == (
        attempt.currency
    )


def _on_checkout_completed(event: dict[str, Any], account: StripeAccount) -> str:
    session = event["data"]["object"]
    found = _attempt_for_session(session)
    if isinstance(found, str):
        return found
    attempt, payment = found
    if not _paid_amount_matches(session, attempt):
        return "ignored:amount_mismatch"
    intent = str(session.get("payment_intent") or "")
    if session.get("payment_status") == "paid":
        changed = payment_mark_paid(
            payment=payment, attempt=attempt, amount_paid=int(session["amount_total"]), payment_intent=intent
        )
    else:  # "unpaid": a delayed method; the async_payment_* event follows
        changed = payment_mark_processing(payment=payment, attempt=attempt, payment_intent=intent)
    return "applied" if changed else "no_change"


def _on_async_payment_succeeded(event: dict[str, Any], account: StripeAccount) -> str:
    session = event["data"]["object"]
    found = _attempt_for_session(session)
    if isinstance(found, str):
        return found
    attempt, payment = found
    if not _paid_amount_matches(session, attempt):
        return "ignored:amount_mismatch"
    changed = payment_mark_paid(
        payment=payment,
        attempt=attempt,
        amount_paid=int(session["amount_total"]),
        payment_intent=str(session.get("payment_intent") or ""),
    )
    return "applied" if changed else "no_change"


def _on_async_payment_failed(event: dict[str, Any], account: StripeAccount) -> str:
    found = _attempt_for_session(event["data"]["object"])
    if isinstance(found, str):
        return found
    attempt, payment = found
    return "applied" if payment_mark_failed(payment=payment, attempt=attempt) else "no_change"


def _on_checkout_expired(event: dict[str, Any], account: StripeAccount) -> str:
    found = _attempt_for_session(event["data"]["object"])
    if isinstance(found, str):
        return found
    attempt, _payment = found
    return "applied" if checkout_attempt_mark_expired(attempt=attempt) else "no_change"


def _on_charge_refunded(event: dict[str, Any], account: StripeAccount) -> str:
    charge = event["data"]["object"]
    intent = str(charge.get("payment_intent") or "")
    metadata = charge.get("metadata") or {}
    if metadata.get("schema") not in (None, current_schema_name()):
        return "ignored:schema_mismatch"
    payment = (
        Payment.objects.select_for_update()
        .filter(payment_intent_id=intent, stripe_account_id=account.account_id)
        .first()
        if intent
        else None
    )
    if payment is None or payment.amount_paid == 0:
        return "ignored:unknown_payment"
    changed = payment_mark_refunded(payment=payment, amount_refunded=int(charge.get("amount_refunded") or 0))
    return "applied" if changed else "no_change"


def _on_account_updated(event: dict[str, Any], account: StripeAccount) -> str:
    remote = event["data"]["object"]
    changed = stripe_account_state_apply(
        account=StripeAccount.objects.select_for_update().get(pk=account.pk),
        charges_enabled=bool(remote.get("charges_enabled")),
        details_submitted=bool(remote.get("details_submitted")),
        payouts_enabled=bool(remote.get("payouts_enabled")),
        created=int(event.get("created") or 0),
    )
    return "applied" if changed else "no_change"


def _on_deauthorized(event: dict[str, Any], account: StripeAccount) -> str:
    was_connected = account.is_connected
    stripe_account_disconnect(account=account)
    return "applied" if was_connected else "no_change"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.async_payment_succeeded": _on_async_payment_succeeded,
    "checkout.session.async_payment_failed": _on_async_payment_failed,
    "checkout.session.expired": _on_checkout_expired,
    "charge.refunded": _on_charge_refunded,
    "account.updated": _on_account_updated,
    "account.application.deauthorized": _on_deauthorized,
}


def stripe_event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in ``payload`` if Stripe signed it within the tolerance; else WebhookRefused."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookRefused(WEBHOOK_NOT_CONFIGURED, status=503)
    if not signature:
        raise WebhookRefused(WEBHOOK_BAD_SIGNATURE)
    try:
        stripe.Webhook.construct_event(
            payload.decode("utf-8"), signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise WebhookRefused(WEBHOOK_BAD_SIGNATURE) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRefused(WEBHOOK_BAD_PAYLOAD) from exc
    event = json.loads(payload)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event.get("type"):
        raise WebhookRefused(WEBHOOK_BAD_PAYLOAD)
    return event


def stripe_event_receive(*, payload: bytes, signature: str | None) -> WebhookResult:
    """Verify, route and apply one webhook delivery (see the module docstring)."""
    event = stripe_event_verify(payload=payload, signature=signature)
    event_type = str(event["type"])
    handler = HANDLERS.get(event_type)
    if handler is None:
        return WebhookResult("ignored:unhandled_type")
    account_id = str(event.get("account") or "")
    if not account_id:
        return WebhookResult("ignored:platform_account")
    account = StripeAccount.objects.select_related("institution").filter(account_id=account_id).first()
    if account is None:
        return WebhookResult("ignored:unknown_account")
    with tenant_context(account.institution), transaction.atomic():
        try:
            with transaction.atomic():
                record = ProcessedEvent.objects.create(
                    event_id=event["id"],
                    type=event_type,
                    account_id=account_id,
                    institution=account.institution,
                )
        except IntegrityError:
            return WebhookResult("duplicate")
        outcome = handler(event, account)
        record.outcome = outcome
        record.save(update_fields=["outcome"])
    logger.info("stripe event", extra={"event": event_type, "status": outcome})
    return WebhookResult(outcome)
