"""The patient's payment step: Stripe Checkout on the institution's own account, the price
they were shown, and nothing settled by coming back from Checkout alone."""

from __future__ import annotations

from django.test import Client
from django_tenants.utils import tenant_context

from intake.models import Case
from payments.connect.models import StripeAccount
from payments.models import CheckoutAttempt, Payment
from payments.services import CHECKOUT_NOT_AVAILABLE, CHECKOUT_STRIPE_ERROR, case_payment_required
from payments.tests.conftest import (
    PLATFORM_KEY,
    case_awaiting_payment,
    checkout_opened,
    fee_set,
    host_of,
    signed_in,
)
from payments.views import PAYMENT_CANCELLED
from tenants.models import Institution
from tests.stripe_double import StripeDouble


def test_it_opens_checkout_on_the_institutions_own_account_for_the_price_shown(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    page = patient.get(f"/payments/case/{case.public_id}/").content.decode()
    assert "$100.00" in page and "Pay by card" in page

    session_id = checkout_opened(patient, case)
    (call,) = stripe_api.calls("POST", "/v1/checkout/sessions")
    assert call.stripe_account == charging_cancer.account_id
    assert call.headers["authorization"] == f"Bearer {PLATFORM_KEY}"
    price = call.body["line_items"][0]["price_data"]
    assert (price["unit_amount"], price["currency"]) == ("10000", "usd")
    assert call.body["mode"] == "payment"
    assert call.body["client_reference_id"] == str(case.public_id)
    assert call.body["metadata"] == {**call.body["metadata"], "case": str(case.public_id), "schema": "cancer"}
    assert call.body["payment_intent_data"]["metadata"]["case"] == str(case.public_id)
    assert call.idempotency_key and str(case.public_id) not in call.idempotency_key
    assert call.body["success_url"].endswith(
        f"/payments/case/{case.public_id}/return/?session_id={{CHECKOUT_SESSION_ID}}"
    )
    # No patient data goes to Stripe.
    assert "Pat Patient" not in str(call.body) and "family.example.com" not in str(call.body)
    with tenant_context(cancer):
        assert CheckoutAttempt.objects.get(session_id=session_id).amount == 10000


def test_it_leaves_the_case_waiting_when_the_return_url_is_visited_without_paying(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    session_id = checkout_opened(patient, case)
    page = patient.get(f"/payments/case/{case.public_id}/return/?session_id={session_id}").content.decode()
    assert "Payment pending" in page
    # Even after paying at Stripe, only the webhook settles it.
    stripe_api.pay(session_id)
    patient.get(f"/payments/case/{case.public_id}/return/?session_id={session_id}")
    with tenant_context(cancer):
        case.refresh_from_db()
        assert case.status == Case.Status.AWAITING_PAYMENT
        assert Payment.objects.get(case=case).status == Payment.Status.UNPAID
        assert case_payment_required(case=case)


def test_it_charges_the_price_the_patient_saw_when_the_fee_changes_mid_flow(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    assert "$100.00" in patient.get(f"/payments/case/{case.public_id}/").content.decode()
    fee_set(cancer, "250.00")
    page = patient.get(f"/payments/case/{case.public_id}/").content.decode()
    assert "$100.00" in page and "$250.00" not in page
    checkout_opened(patient, case)
    (call,) = stripe_api.calls("POST", "/v1/checkout/sessions")
    assert call.body["line_items"][0]["price_data"]["unit_amount"] == "10000"
    # A new patient sees the new fee.
    other = case_awaiting_payment(cancer)
    assert "$250.00" in patient.get(f"/payments/case/{other.public_id}/").content.decode()


def test_it_tells_the_patient_when_online_payment_is_not_set_up(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    page = patient.get(f"/payments/case/{case.public_id}/").content.decode()
    assert CHECKOUT_NOT_AVAILABLE.split(".")[0] in page and "Waiver code" in page
    response = patient.post(f"/payments/case/{case.public_id}/pay/", follow=True)
    assert CHECKOUT_NOT_AVAILABLE in response.content.decode()


def test_it_says_so_when_stripe_cannot_be_reached(
    cancer: Institution, charging_cancer: StripeAccount, settings: object
) -> None:
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # type: ignore[attr-defined]
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    response = patient.post(f"/payments/case/{case.public_id}/pay/", follow=True)
    assert CHECKOUT_STRIPE_ERROR in response.content.decode()
    with tenant_context(cancer):
        assert not CheckoutAttempt.objects.exists()


def test_it_tells_a_patient_who_cancelled_that_nothing_was_charged(
    cancer: Institution, charging_cancer: StripeAccount
) -> None:
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    response = patient.get(f"/payments/case/{case.public_id}/cancelled/", follow=True)
    assert PAYMENT_CANCELLED in response.content.decode()


def test_it_needs_no_payment_when_the_institution_charges_nothing(neuro: Institution) -> None:
    fee_set(neuro, enabled=False)
    case = case_awaiting_payment(neuro)
    with tenant_context(neuro):
        assert not case_payment_required(case=case)
    page = (
        signed_in(neuro, "patient@neuro.example.com")
        .get(f"/payments/case/{case.public_id}/")
        .content.decode()
    )
    assert "There is no fee for this case" in page


def test_it_refuses_the_payment_page_to_everyone_but_the_patient(
    cancer: Institution, neuro: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case = case_awaiting_payment(cancer)
    paths = [f"/payments/case/{case.public_id}/", f"/payments/case/{case.public_id}/return/"]
    logged_out = Client(HTTP_HOST=host_of(cancer))
    coordinator = signed_in(cancer, "coordinator@cancer.example.com", staff_second_factor=True)
    for path in paths:
        assert logged_out.get(path).status_code == 302  # to sign in
        assert coordinator.get(path).status_code == 404
    # Another institution's patient, on their own site: the case does not exist there.
    other_patient = signed_in(neuro, "patient@neuro.example.com")
    assert other_patient.get(paths[0]).status_code == 404
    assert other_patient.post(f"/payments/case/{case.public_id}/pay/").status_code == 404
    assert stripe_api.calls("POST", "/v1/checkout/sessions") == []


def test_it_refuses_another_patients_case(cancer: Institution, charging_cancer: StripeAccount) -> None:
    from accounts.models import User

    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        User.objects.create_user("someone-else@cancer.example.com", "another-password-1")
    stranger = signed_in(cancer, "someone-else@cancer.example.com")
    assert stranger.get(f"/payments/case/{case.public_id}/").status_code == 404
    assert stranger.post(f"/payments/case/{case.public_id}/waiver/", {"code": "X"}).status_code == 404


def test_it_freezes_the_price_when_the_patient_starts_the_case(cancer: Institution, no_stripe: None) -> None:
    from accounts.models import User
    from intake.services import case_start

    fee_set(cancer, "100.00")
    with tenant_context(cancer):
        case = case_start(owner=User.objects.get(email="patient@cancer.example.com"))
    fee_set(cancer, "250.00")
    with tenant_context(cancer):
        assert case_payment_required(case=case)
        assert Payment.objects.get(case=case).amount_display == "$100.00"


def test_it_asks_whether_a_case_needs_paying_without_writing_anything(
    cancer: Institution, no_stripe: None
) -> None:
    from accounts.models import User

    fee_set(cancer, "100.00")
    with tenant_context(cancer):
        case = Case.objects.create(owner=User.objects.get(email="patient@cancer.example.com"))
        assert case_payment_required(case=case)  # today's fee, for a case that has no price yet
        assert not Payment.objects.filter(case=case).exists()
    fee_set(cancer, enabled=False)
    with tenant_context(cancer):
        assert not case_payment_required(case=case)


def test_it_shows_the_fee_before_a_patient_starts(
    cancer: Institution, neuro: Institution, no_stripe: None
) -> None:
    from django.template import Context, Template
    from django.test import RequestFactory

    fee_set(cancer, "100.00")
    fee_set(neuro, enabled=False)
    notice = Template("{% load payments %}{% price_notice %}")

    def rendered(institution: Institution) -> str:
        request = RequestFactory().get("/")
        request.tenant = institution  # type: ignore[attr-defined]
        return notice.render(Context({"request": request}))

    assert "Lakeside Cancer Center" in rendered(cancer) and "$100.00" in rendered(cancer)
    assert rendered(neuro).strip() == ""
