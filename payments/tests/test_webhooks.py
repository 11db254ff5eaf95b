"""Stripe's webhook: only signed events count, each once, in any order, for the right
institution only; a case reaches the queue when (and only when) Stripe confirms the payment."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core import mail
from django_tenants.utils import tenant_context

from intake.models import Case
from payments.connect.models import ProcessedEvent, StripeAccount
from payments.models import CheckoutAttempt, Payment
from payments.tests.conftest import (
    account_connect,
    case_awaiting_payment,
    checkout_opened,
    fee_set,
    signed_in,
    webhook_post,
)
from payments.webhooks import WEBHOOK_BAD_SIGNATURE
from tenants.models import Institution
from tests.stripe_double import StripeDouble, signature_header


def _paid_case(cancer: Institution, double: StripeDouble) -> tuple[Case, str]:
    """A cancer-centre case whose patient went through Checkout and paid at Stripe."""
    case = case_awaiting_payment(cancer)
    session_id = checkout_opened(signed_in(cancer, "patient@cancer.example.com"), case)
    double.pay(session_id)
    return case, session_id


def _completed(double: StripeDouble, session_id: str, account: StripeAccount, **changes: Any) -> bytes:
    return double.event(
        "checkout.session.completed", {**double.sessions[session_id], **changes}, account=account.account_id
    )


def _state(institution: Institution, case: Case) -> tuple[str, str]:
    with tenant_context(institution):
        case.refresh_from_db()
        return case.status, Payment.objects.get(case=case).status


def test_it_moves_a_paid_case_into_the_queue_once_however_often_the_event_arrives(
    cancer: Institution,
    charging_cancer: StripeAccount,
    stripe_api: StripeDouble,
    django_capture_on_commit_callbacks: Any,
    eager_tasks: None,
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    payload = _completed(stripe_api, session_id, charging_cancer)
    with django_capture_on_commit_callbacks() as callbacks:
        responses = [webhook_post(payload) for _ in range(3)]
    with tenant_context(cancer):  # where they run in production: at the webhook's commit
        for callback in callbacks:
            callback()
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json()["outcome"] for r in responses] == ["applied", "duplicate", "duplicate"]
    assert _state(cancer, case) == (Case.Status.SUBMITTED, Payment.Status.PAID)
    # One "case received" email and one receipt: nothing sent twice.
    # The patient's emails (staff get their own "new case" notice), each once.
    subjects = sorted(m.subject for m in mail.outbox if "patient@cancer.example.com" in m.to)
    assert len(subjects) == 2, subjects
    assert any("received" in s for s in subjects) and any("receipt" in s for s in subjects)
    receipt = next(m for m in mail.outbox if "receipt" in m.subject)
    assert "$100.00" in receipt.body and receipt.from_email.startswith("Lakeside Cancer Center <")
    assert ProcessedEvent.objects.filter(event_id=json.loads(payload)["id"]).count() == 1
    with tenant_context(cancer):
        payment = Payment.objects.get(case=case)
        assert payment.amount_paid == 10000 and payment.payment_intent_id.startswith("pi_test_")


def test_it_refuses_an_event_without_a_signature(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    from django.conf import settings
    from django.test import Client

    response = Client(HTTP_HOST=settings.PLATFORM_DOMAIN).post(
        "/stripe/webhook",
        data=_completed(stripe_api, session_id, charging_cancer),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == WEBHOOK_BAD_SIGNATURE
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_refuses_an_event_signed_with_another_secret(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    response = webhook_post(_completed(stripe_api, session_id, charging_cancer), secret="whsec_someone_else")
    assert response.status_code == 400
    assert response.json()["error"] == WEBHOOK_BAD_SIGNATURE
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_refuses_a_stale_signature(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    response = webhook_post(
        _completed(stripe_api, session_id, charging_cancer), timestamp=int(time.time()) - 3600
    )
    assert response.status_code == 400
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)
    assert not ProcessedEvent.objects.exists()


def test_it_refuses_a_tampered_body(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    from django.conf import settings
    from django.test import Client

    from payments.tests.conftest import WEBHOOK_SECRET

    # Signed for an unpaid session, then changed to "paid" on the way.
    original = _completed(stripe_api, session_id, charging_cancer, payment_status="unpaid")
    tampered = original.replace(b'"payment_status": "unpaid"', b'"payment_status": "paid"')
    assert tampered != original
    response = Client(HTTP_HOST=settings.PLATFORM_DOMAIN).post(
        "/stripe/webhook",
        data=tampered,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature_header(original, WEBHOOK_SECRET),
    )
    assert response.status_code == 400
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_ignores_an_event_for_an_account_no_institution_owns(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    stranger = StripeAccount(account_id="acct_test_nobody")
    response = webhook_post(_completed(stripe_api, session_id, stranger))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored:unknown_account"
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_ignores_another_institutions_account_claiming_this_institutions_case(
    cancer: Institution, neuro: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    """The neuro institute's account sends an event naming the cancer centre's case and
    schema: it is routed to neuro's schema, where it matches nothing, and changes nothing."""
    neuro_account = account_connect(neuro, stripe_api)
    case, session_id = _paid_case(cancer, stripe_api)
    response = webhook_post(_completed(stripe_api, session_id, neuro_account))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored:schema_mismatch"
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)
    # Even naming neuro's own schema, a session neuro never opened is unknown there.
    forged = _completed(
        stripe_api, session_id, neuro_account, metadata={"case": str(case.public_id), "schema": "neuro"}
    )
    assert webhook_post(forged).json()["outcome"] == "ignored:unknown_session"
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_acknowledges_and_ignores_unknown_event_types(
    charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    payload = stripe_api.event(
        "customer.created", {"id": "cus_1", "object": "customer"}, account=charging_cancer.account_id
    )
    response = webhook_post(payload)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored:unhandled_type"


def test_it_never_unpays_a_case_when_a_failure_arrives_after_the_success(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    session = stripe_api.sessions[session_id]
    failed = stripe_api.event(
        "checkout.session.async_payment_failed",
        {**session, "payment_status": "unpaid"},
        account=charging_cancer.account_id,
        created=int(time.time()) - 60,  # older than the success, delivered after it
    )
    assert webhook_post(_completed(stripe_api, session_id, charging_cancer)).json()["outcome"] == "applied"
    assert webhook_post(failed).json()["outcome"] == "no_change"
    assert _state(cancer, case) == (Case.Status.SUBMITTED, Payment.Status.PAID)


def test_it_waits_for_a_delayed_payment_and_lets_the_patient_retry_after_it_fails(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    session = {**stripe_api.sessions[session_id], "payment_status": "unpaid"}
    account = charging_cancer.account_id
    assert (
        webhook_post(stripe_api.event("checkout.session.completed", session, account=account)).status_code
        == 200
    )
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.PROCESSING)
    patient = signed_in(cancer, "patient@cancer.example.com")
    assert "Payment pending" in patient.get(f"/payments/case/{case.public_id}/").content.decode()

    webhook_post(stripe_api.event("checkout.session.async_payment_failed", session, account=account))
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.FAILED)
    page = patient.get(f"/payments/case/{case.public_id}/").content.decode()
    assert "Payment failed" in page and "Try paying again" in page

    retry_session = checkout_opened(patient, case)
    assert retry_session != session_id
    stripe_api.pay(retry_session)
    webhook_post(
        stripe_api.event(
            "checkout.session.async_payment_succeeded", stripe_api.sessions[retry_session], account=account
        )
    )
    assert _state(cancer, case) == (Case.Status.SUBMITTED, Payment.Status.PAID)


def test_it_marks_an_expired_checkout_so_the_next_click_opens_a_new_one(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    first = checkout_opened(patient, case)
    assert checkout_opened(patient, case) == first  # still open: reused, not a second session
    expired = stripe_api.event(
        "checkout.session.expired",
        {**stripe_api.sessions[first], "status": "expired"},
        account=charging_cancer.account_id,
    )
    assert webhook_post(expired).json()["outcome"] == "applied"
    with tenant_context(cancer):
        assert CheckoutAttempt.objects.get(session_id=first).status == CheckoutAttempt.Status.EXPIRED
    assert checkout_opened(patient, case) != first
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_ignores_a_paid_event_whose_amount_is_not_what_the_patient_was_shown(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    response = webhook_post(_completed(stripe_api, session_id, charging_cancer, amount_total=100))
    assert response.json()["outcome"] == "ignored:amount_mismatch"
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_records_a_refund_made_in_the_stripe_dashboard_and_tells_the_patient_once(
    cancer: Institution,
    charging_cancer: StripeAccount,
    stripe_api: StripeDouble,
    django_capture_on_commit_callbacks: Any,
    eager_tasks: None,
) -> None:
    case, session_id = _paid_case(cancer, stripe_api)
    webhook_post(_completed(stripe_api, session_id, charging_cancer))
    refunded = stripe_api.event(
        "charge.refunded",
        stripe_api.charge_for(session_id, amount_refunded=10000),
        account=charging_cancer.account_id,
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_post(refunded).json()["outcome"] == "applied"
        assert webhook_post(refunded).json()["outcome"] == "duplicate"
    with tenant_context(cancer):
        payment = Payment.objects.get(case=case)
    assert payment.status == Payment.Status.REFUNDED and payment.amount_refunded == 10000
    assert sorted((m.subject, m.to[0]) for m in mail.outbox) == [
        ("Your payment has been refunded · Lakeside Cancer Center", "patient@cancer.example.com"),
    ]


def test_it_keeps_the_newest_account_state_when_updates_arrive_out_of_order(
    charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    account_id = charging_cancer.account_id
    now = int(time.time())
    disabled = {"id": account_id, "object": "account", "charges_enabled": False, "details_submitted": True}
    enabled = {**disabled, "charges_enabled": True}
    webhook_post(stripe_api.event("account.updated", disabled, account=account_id, created=now))
    webhook_post(stripe_api.event("account.updated", enabled, account=account_id, created=now - 100))
    charging_cancer.refresh_from_db()
    assert charging_cancer.charges_enabled is False


def test_it_disconnects_an_account_that_deauthorised_the_platform(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    application = {"id": "ca_test_platform", "object": "application", "name": "SecondRead"}
    payload = stripe_api.event(
        "account.application.deauthorized", application, account=charging_cancer.account_id
    )
    assert webhook_post(payload).json()["outcome"] == "applied"
    charging_cancer.refresh_from_db()
    assert not charging_cancer.is_connected
    case = case_awaiting_payment(cancer)
    page = signed_in(cancer, "patient@cancer.example.com").get(f"/payments/case/{case.public_id}/")
    assert "Online payment is not set up" in page.content.decode()


def test_it_answers_503_when_the_platform_has_no_webhook_secret(no_stripe: None, cancer: Institution) -> None:
    fee_set(cancer)
    response = webhook_post(b'{"id": "evt_1", "type": "checkout.session.completed"}')
    assert response.status_code == 503
