"""Refunds of declined cases: through the institution's Stripe account, the patient told once;
or, when it cannot be done, the reason recorded for staff."""

from __future__ import annotations

from typing import Any

from django.core import mail
from django_tenants.utils import tenant_context

from intake.models import Case
from payments.connect.models import StripeAccount
from payments.models import Payment
from payments.services import (
    REFUND_ALREADY_DONE,
    REFUND_NO_ACCOUNT,
    REFUND_NOTHING_PAID,
    case_refund,
    stripe_account_disconnect,
)
from payments.tests.conftest import case_awaiting_payment, checkout_opened, signed_in, webhook_post
from tenants.models import Institution
from tests.stripe_double import StripeDouble


def _paid(cancer: Institution, account: StripeAccount, double: StripeDouble) -> tuple[Case, str]:
    case = case_awaiting_payment(cancer)
    session_id = checkout_opened(signed_in(cancer, "patient@cancer.example.com"), case)
    double.pay(session_id)
    webhook_post(
        double.event("checkout.session.completed", double.sessions[session_id], account=account.account_id)
    )
    return case, session_id


def test_it_refunds_through_the_institutions_account_and_tells_the_patient(
    cancer: Institution,
    charging_cancer: StripeAccount,
    stripe_api: StripeDouble,
    django_capture_on_commit_callbacks: Any,
    eager_tasks: None,
) -> None:
    case, session_id = _paid(cancer, charging_cancer, stripe_api)
    mail.outbox.clear()
    with tenant_context(cancer), django_capture_on_commit_callbacks(execute=True):
        outcome = case_refund(case=case, reason="Outside our specialty")
        again = case_refund(case=case, reason="Outside our specialty")
    assert outcome.refunded and outcome.amount == 10000 and "$100.00" in outcome.message
    assert again.refunded and again.message == REFUND_ALREADY_DONE
    (call,) = stripe_api.calls("POST", "/v1/refunds")
    assert call.stripe_account == charging_cancer.account_id
    assert call.body["payment_intent"] == stripe_api.sessions[session_id]["payment_intent"]
    assert call.body["amount"] == "10000" and call.idempotency_key
    assert "specialty" not in str(call.body)  # the reason stays with the institution
    with tenant_context(cancer):
        payment = Payment.objects.get(case=case)
    assert payment.status == Payment.Status.REFUNDED and payment.refund_id.startswith("re_test_")
    # One notice, to the account (the patient's own address is not confirmed).
    assert sorted((m.subject, m.to[0]) for m in mail.outbox) == [
        ("Your payment has been refunded · Lakeside Cancer Center", "patient@cancer.example.com"),
    ]
    assert "$100.00" in mail.outbox[0].body
    # Stripe's charge.refunded event for our own refund changes nothing and tells nobody again.
    event = stripe_api.event(
        "charge.refunded",
        stripe_api.charge_for(session_id, amount_refunded=10000),
        account=charging_cancer.account_id,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_post(event).json()["outcome"] == "no_change"
    assert len(mail.outbox) == 1


def test_it_records_why_a_refund_could_not_be_made(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, _ = _paid(cancer, charging_cancer, stripe_api)
    stripe_api.fail_next_refund = "invalid_request_error"
    with tenant_context(cancer):
        outcome = case_refund(case=case, reason="Declined")
        payment = Payment.objects.get(case=case)
    assert not outcome.refunded and "Stripe refused the refund" in outcome.message
    assert payment.status == Payment.Status.PAID and payment.refund_note == outcome.message
    admin = signed_in(cancer, "admin@cancer.example.com", staff_second_factor=True)
    assert "Stripe refused the refund" in admin.get("/payments/").content.decode()


def test_it_cannot_refund_through_a_disconnected_account(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, _ = _paid(cancer, charging_cancer, stripe_api)
    stripe_account_disconnect(account=charging_cancer)
    with tenant_context(cancer):
        outcome = case_refund(case=case, reason="Declined")
    assert not outcome.refunded and outcome.message == REFUND_NO_ACCOUNT
    assert stripe_api.calls("POST", "/v1/refunds") == []


def test_it_has_nothing_to_refund_for_a_waived_or_unpaid_case(cancer: Institution, no_stripe: None) -> None:
    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        assert case_refund(case=case, reason="Declined").message == REFUND_NOTHING_PAID
