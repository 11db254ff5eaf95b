"""Refunds of declined and withdrawn cases: asked for in the transaction of the decline (an
outbox message), made at Stripe afterwards by the worker with one idempotency key, so a
delivery run twice refunds once; the patient told once Stripe said yes; Stripe down never fails
the decline, and a refusal is left for staff to see."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from intake.models import Case
from outbox.models import OutboxMessage
from outbox.services import message_deliver, messages_failing
from payments.connect.models import StripeAccount
from payments.models import Payment
from payments.services import (
    REFUND_ALREADY_DONE,
    REFUND_NO_ACCOUNT,
    REFUND_NOTHING_PAID,
    REFUND_RETRYING,
    STRIPE_REFUND,
    case_refund,
    stripe_account_disconnect,
)
from payments.tests.conftest import case_awaiting_payment, checkout_opened, signed_in, webhook_post
from review.services import case_decline
from tenants.models import Institution
from tests.live import free_port
from tests.outbox import outbox_deliver_all
from tests.stripe_double import StripeDouble

REFUND_NOTICE = "Your payment has been refunded · Lakeside Cancer Center"


def _paid(cancer: Institution, account: StripeAccount, double: StripeDouble) -> tuple[Case, str]:
    case = case_awaiting_payment(cancer)
    session_id = checkout_opened(signed_in(cancer, "patient@cancer.example.com"), case)
    double.pay(session_id)
    webhook_post(
        double.event("checkout.session.completed", double.sessions[session_id], account=account.account_id)
    )
    return case, session_id


def _declined(cancer: Institution, case: Case) -> Any:
    with tenant_context(cancer):
        coordinator = User.objects.get(email="coordinator@cancer.example.com")
        return case_decline(case=Case.objects.get(pk=case.pk), by=coordinator, reason="Outside our specialty")


def _refund_message(cancer: Institution) -> OutboxMessage:
    with tenant_context(cancer):
        return OutboxMessage.objects.get(kind=STRIPE_REFUND)


def _payment(cancer: Institution, case: Case) -> Payment:
    with tenant_context(cancer):
        return Payment.objects.get(case=case)


def _refund_notices() -> list[str]:
    return [m.to[0] for m in mail.outbox if m.subject == REFUND_NOTICE]


def test_it_refunds_through_the_institutions_account_after_the_decline_and_tells_the_patient(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble, outbox_email: None
) -> None:
    case, session_id = _paid(cancer, charging_cancer, stripe_api)
    outcome = _declined(cancer, case)
    # The decline asked for the refund; nothing was sent to Stripe inside it.
    assert not outcome.refunded and not outcome.staff_must_act and "$100.00" in outcome.message
    assert stripe_api.calls("POST", "/v1/refunds") == []
    assert _payment(cancer, case).status == Payment.Status.PAID
    assert _refund_message(cancer).status == OutboxMessage.Status.PENDING

    outbox_deliver_all(cancer.schema_name)  # the worker: the refund, then (next round) the notice
    mail.outbox.clear()
    outbox_deliver_all(cancer.schema_name)
    (call,) = stripe_api.calls("POST", "/v1/refunds")
    assert call.stripe_account == charging_cancer.account_id
    assert call.body["payment_intent"] == stripe_api.sessions[session_id]["payment_intent"]
    assert call.body["amount"] == "10000" and call.idempotency_key
    assert "specialty" not in str(call.body)  # the reason stays with the institution
    payment = _payment(cancer, case)
    assert payment.status == Payment.Status.REFUNDED and payment.refund_id.startswith("re_test_")
    assert payment.refund_note == ""
    # One notice, to the account (the patient's own address is not confirmed).
    assert _refund_notices() == ["patient@cancer.example.com"]
    with tenant_context(cancer):
        assert case_refund(case=case, reason="again").message == REFUND_ALREADY_DONE
    # Stripe's charge.refunded event for our own refund changes nothing and tells nobody again.
    event = stripe_api.event(
        "charge.refunded",
        stripe_api.charge_for(session_id, amount_refunded=10000),
        account=charging_cancer.account_id,
    )
    assert webhook_post(event).json()["outcome"] == "no_change"
    outbox_deliver_all(cancer.schema_name)
    assert _refund_notices() == ["patient@cancer.example.com"]


def test_a_refund_delivered_twice_refunds_once(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble, outbox_email: None
) -> None:
    """The worker died after Stripe refunded and before anything was recorded: the message is
    delivered again, Stripe is asked again with the same key, and one refund exists."""
    case, session_id = _paid(cancer, charging_cancer, stripe_api)
    _declined(cancer, case)
    message = _refund_message(cancer)
    with tenant_context(cancer):
        assert message_deliver(message_id=message.pk)
        assert not message_deliver(message_id=message.pk)  # a second task finds it delivered
        # As if the first run's writes were lost with its worker:
        Payment.objects.filter(case=case).update(status=Payment.Status.PAID, amount_refunded=0)
        OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.PENDING)
        assert message_deliver(message_id=message.pk)
    first, second = stripe_api.calls("POST", "/v1/refunds")
    assert first.idempotency_key == second.idempotency_key
    intent = stripe_api.sessions[session_id]["payment_intent"]
    assert len([r for r in stripe_api.refunds.values() if r["payment_intent"] == intent]) == 1
    assert _payment(cancer, case).status == Payment.Status.REFUNDED
    mail.outbox.clear()
    outbox_deliver_all(cancer.schema_name)
    assert _refund_notices() == ["patient@cancer.example.com"]


def test_stripe_down_never_fails_the_decline_and_the_refund_is_made_later(
    cancer: Institution,
    charging_cancer: StripeAccount,
    stripe_api: StripeDouble,
    outbox_email: None,
    settings: Any,
) -> None:
    case, _ = _paid(cancer, charging_cancer, stripe_api)
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    admin = signed_in(cancer, "admin@cancer.example.com", staff_second_factor=True)
    coordinator = signed_in(cancer, "coordinator@cancer.example.com", staff_second_factor=True)
    page = coordinator.post(
        f"/workspace/cases/{case.public_id}/decline", {"reason": "Outside our specialty."}, follow=True
    )
    assert page.status_code == 200 and "The case was declined" in page.content.decode()
    with tenant_context(cancer):
        assert Case.objects.get(pk=case.pk).status == Case.Status.DECLINED
    outbox_deliver_all(cancer.schema_name)
    message = _refund_message(cancer)
    assert message.status == OutboxMessage.Status.PENDING and message.attempts == 1
    assert message.last_error == "APIConnectionError" and message.next_attempt_at > timezone.now()
    assert _payment(cancer, case).status == Payment.Status.PAID
    assert REFUND_RETRYING in admin.get("/payments/").content.decode()

    settings.STRIPE_API_BASE = stripe_api.url  # Stripe is back; the retry comes due
    with tenant_context(cancer):
        OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    mail.outbox.clear()
    outbox_deliver_all(cancer.schema_name)
    outbox_deliver_all(cancer.schema_name)
    assert len(stripe_api.calls("POST", "/v1/refunds")) == 1
    assert _payment(cancer, case).status == Payment.Status.REFUNDED
    assert _refund_notices() == ["patient@cancer.example.com"]
    assert REFUND_RETRYING not in admin.get("/payments/").content.decode()


def test_a_refund_stripe_refuses_is_given_up_and_shown_to_staff(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble, outbox_email: None
) -> None:
    case, _ = _paid(cancer, charging_cancer, stripe_api)
    _declined(cancer, case)
    stripe_api.fail_next_refund = "invalid_request_error"
    mail.outbox.clear()
    outbox_deliver_all(cancer.schema_name)
    message = _refund_message(cancer)
    assert message.status == OutboxMessage.Status.FAILED and message.attempts == 1  # not retried for hours
    payment = _payment(cancer, case)
    assert payment.status == Payment.Status.PAID and "Stripe refused the refund" in payment.refund_note
    assert _refund_notices() == []
    with tenant_context(cancer):
        assert list(messages_failing()) == [message]
    admin = signed_in(cancer, "admin@cancer.example.com", staff_second_factor=True)
    assert "Stripe refused the refund" in admin.get("/payments/").content.decode()
    deliveries = admin.get("/settings/emails/").content.decode()
    assert "Card refund of $100.00" in deliveries and "Pat Patient" not in deliveries


def test_it_cannot_refund_through_a_disconnected_account(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble, outbox_email: None
) -> None:
    case, _ = _paid(cancer, charging_cancer, stripe_api)
    stripe_account_disconnect(account=charging_cancer)
    with tenant_context(cancer), transaction.atomic():
        outcome = case_refund(case=case, reason="Declined")
    assert not outcome.refunded and outcome.staff_must_act and outcome.message == REFUND_NO_ACCOUNT
    with tenant_context(cancer):
        assert not OutboxMessage.objects.filter(kind=STRIPE_REFUND).exists()
    assert stripe_api.calls("POST", "/v1/refunds") == []


def test_a_refund_asked_for_in_a_decline_that_rolls_back_is_never_made(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble, outbox_email: None
) -> None:
    case, _ = _paid(cancer, charging_cancer, stripe_api)
    with tenant_context(cancer), pytest.raises(RuntimeError), transaction.atomic():
        case_refund(case=case, reason="Declined")
        raise RuntimeError
    with tenant_context(cancer):
        assert not OutboxMessage.objects.filter(kind=STRIPE_REFUND).exists()
    assert _payment(cancer, case).refund_note == ""


def test_it_has_nothing_to_refund_for_a_waived_or_unpaid_case(cancer: Institution, no_stripe: None) -> None:
    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        assert case_refund(case=case, reason="Declined").message == REFUND_NOTHING_PAID
