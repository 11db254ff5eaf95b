"""The admin's payment settings (Stripe connection, waiver codes), the payments report, the
CSV export and revenue: for the institution's own staff only, and its own payments only."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from intake.models import Case
from payments.connect.models import StripeAccount
from payments.models import Payment, WaiverCode
from payments.selectors import revenue_by_week
from payments.tests.conftest import (
    case_awaiting_payment,
    checkout_opened,
    fee_set,
    host_of,
    signed_in,
    webhook_post,
)
from payments.views import DISCONNECTED_NOTICE
from tenants.models import Institution
from tests.stripe_double import StripeDouble


def _body(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def _admin(institution: Institution) -> Client:
    return signed_in(institution, f"admin@{institution.slug}.example.com", staff_second_factor=True)


def test_it_tells_the_admin_that_online_payment_is_not_set_up(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    page = _admin(cancer).get("/payments/settings/").content.decode()
    assert 'data-state="not_configured"' in page
    assert "Online payment is not set up" in page and "waiver code" in page
    assert "$100.00" in page


def test_it_connects_the_institutions_own_stripe_account(
    cancer: Institution, stripe_api: StripeDouble
) -> None:
    fee_set(cancer)
    StripeAccount.objects.filter(institution=cancer).delete()
    admin = _admin(cancer)
    assert 'data-state="not_connected"' in admin.get("/payments/settings/").content.decode()
    # Following a stale link does not create an account; only the admin's button does.
    assert admin.get("/payments/settings/stripe/refresh/")["Location"] == "/payments/settings/"
    assert stripe_api.calls("POST", "/v1/accounts") == []

    response = admin.post("/payments/settings/stripe/connect/")
    assert response.status_code == 302 and "/onboard/acct_test_" in response["Location"]
    account = StripeAccount.objects.get(institution=cancer)
    (create,) = stripe_api.calls("POST", "/v1/accounts")
    assert create.body["type"] == "standard" and create.stripe_account is None
    (link,) = stripe_api.calls("POST", "/v1/account_links")
    assert link.body["account"] == account.account_id
    assert link.body["return_url"].endswith("/payments/settings/stripe/return/")
    assert 'data-state="onboarding"' in admin.get("/payments/settings/").content.decode()

    refreshed = admin.get("/payments/settings/stripe/refresh/")  # the onboarding link expired
    assert "/onboard/" + account.account_id in refreshed["Location"]
    assert len(stripe_api.calls("POST", "/v1/accounts")) == 1  # the same account, a new link
    stripe_api.onboard(account.account_id)  # the admin finishes Stripe's forms
    page = admin.get("/payments/settings/stripe/return/", follow=True).content.decode()
    assert 'data-state="active"' in page and account.account_id in page
    account.refresh_from_db()
    assert account.charges_enabled
    # Only the account id is stored: no key of the institution's.
    assert not any(call.body.get("secret") for call in stripe_api.requests)

    page = admin.post("/payments/settings/stripe/disconnect/", follow=True).content.decode()
    assert DISCONNECTED_NOTICE in page and 'data-state="not_connected"' in page


def test_it_creates_and_withdraws_waiver_codes(cancer: Institution, no_stripe: None) -> None:
    admin = _admin(cancer)
    tomorrow = (timezone.now() + datetime.timedelta(days=1)).date().isoformat()
    page = admin.post(
        "/payments/settings/waiver-codes/",
        {
            "code": "ref-physician",
            "purpose": "Referring physicians",
            "max_uses": "10",
            "expires_on": tomorrow,
        },
        follow=True,
    ).content.decode()
    assert "Waiver code REF-PHYSICIAN created." in page
    with tenant_context(cancer):
        waiver = WaiverCode.objects.get(code="REF-PHYSICIAN")
    assert waiver.max_uses == 10 and waiver.expires_at and waiver.expires_at > timezone.now()
    page = admin.post(
        "/payments/settings/waiver-codes/", {"code": "REF-PHYSICIAN"}, follow=True
    ).content.decode()
    assert "There is already a waiver code with these letters." in page
    admin.post(f"/payments/settings/waiver-codes/{waiver.pk}/withdraw/")
    with tenant_context(cancer):
        waiver.refresh_from_db()
    assert not waiver.active


def test_it_keeps_payment_settings_from_patients_coordinators_and_outsiders(
    cancer: Institution, neuro: Institution, no_stripe: None
) -> None:
    patient = signed_in(cancer, "patient@cancer.example.com")
    coordinator = signed_in(cancer, "coordinator@cancer.example.com", staff_second_factor=True)
    logged_out = Client(HTTP_HOST=host_of(cancer))
    with tenant_context(cancer):
        waiver = WaiverCode.objects.create(code="KEEP-OUT")
    for client in (patient, coordinator):
        assert client.get("/payments/settings/").status_code == 403
        assert client.post("/payments/settings/waiver-codes/", {"code": "SNEAKY"}).status_code == 403
        assert client.post(f"/payments/settings/waiver-codes/{waiver.pk}/withdraw/").status_code == 403
        assert client.post("/payments/settings/stripe/disconnect/").status_code == 403
    assert patient.get("/payments/").status_code == 403
    assert patient.get("/payments/export.csv").status_code == 403
    assert logged_out.get("/payments/settings/").status_code == 302
    assert logged_out.get("/payments/export.csv").status_code == 302
    # Neuro's admin, on neuro's site, cannot reach the cancer centre's code.
    assert _admin(neuro).post(f"/payments/settings/waiver-codes/{waiver.pk}/withdraw/").status_code == 404
    with tenant_context(cancer):
        assert WaiverCode.objects.filter(code="SNEAKY").count() == 0
        waiver.refresh_from_db()
    assert waiver.active


def test_it_shows_revenue_and_exports_payments_of_the_institution_only(
    cancer: Institution, neuro: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case = case_awaiting_payment(cancer)
    session_id = checkout_opened(signed_in(cancer, "patient@cancer.example.com"), case)
    stripe_api.pay(session_id)
    webhook_post(
        stripe_api.event(
            "checkout.session.completed", stripe_api.sessions[session_id], account=charging_cancer.account_id
        )
    )
    since = timezone.now() - datetime.timedelta(days=7)
    with tenant_context(cancer):
        (week,) = revenue_by_week(since=since)
    assert (week.net, week.currency, week.payments) == (10000, "usd", 1)
    with tenant_context(neuro):
        assert revenue_by_week(since=since) == []

    number = str(case.number)
    coordinator = signed_in(cancer, "coordinator@cancer.example.com", staff_second_factor=True)
    page = coordinator.get("/payments/").content.decode()
    assert "$100.00" in page and number in page
    assert 'href="/payments/">Payments</a>' in page  # in the staff's navigation
    assert number not in _admin(neuro).get("/payments/").content.decode()

    response = _admin(cancer).get("/payments/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    export = _body(response)
    rows = list(csv.reader(io.StringIO(export)))
    assert rows[0][:4] == ["case", "status", "amount", "currency"]
    (row,) = [r for r in rows[1:] if r[0] == number]
    assert row[1:6] == ["paid", "100.00", "USD", "100.00", "0.00"]
    assert "Pat Patient" not in export
    assert number not in _body(_admin(neuro).get("/payments/export.csv"))


def test_it_shows_staff_the_payment_state_of_a_case(cancer: Institution, no_stripe: None) -> None:
    from django.template.loader import render_to_string

    fee_set(cancer)
    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        Payment.objects.create(
            case=case, amount=10000, currency="usd", status=Payment.Status.PAID, amount_paid=10000
        )
        case = Case.objects.get(pk=case.pk)
        html = render_to_string("payments/case_payment_badge.html", {"case": case})
    assert 'data-status="paid"' in html and "Paid $100.00" in html
    with tenant_context(cancer):
        unpaid = case_awaiting_payment(cancer)
        assert render_to_string("payments/case_payment_badge.html", {"case": unpaid}).strip() == ""


def test_it_lets_a_charging_institution_without_stripe_take_waiver_codes_only(
    cancer: Institution, neuro: Institution, no_stripe: None
) -> None:
    """The demo: the cancer centre charges, Stripe is not configured, DEMO-WAIVER works."""
    fee_set(cancer)
    with tenant_context(cancer):
        WaiverCode.objects.get_or_create(code="DEMO-WAIVER")
    case = case_awaiting_payment(cancer)
    patient = signed_in(cancer, "patient@cancer.example.com")
    page = patient.post(f"/payments/case/{case.public_id}/waiver/", {"code": "demo-waiver"}, follow=True)
    assert "The fee is waived for this case." in page.content.decode()


def test_it_generates_an_unguessable_waiver_code_by_default(cancer: Institution, no_stripe: None) -> None:
    import re

    from payments.services.waivers import _CODE_ALPHABET

    admin = _admin(cancer)
    page = admin.post("/payments/settings/waiver-codes/", {"code": "", "purpose": "Hardship"}, follow=True)
    match = re.search(r"Waiver code ([0-9A-Z-]+) created\.", page.content.decode())
    assert match, page.content.decode()[:2000]
    code = match.group(1)
    letters = code.replace("-", "")
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert set(letters) <= set(_CODE_ALPHABET) and len(_CODE_ALPHABET) == 32
    assert len(letters) * 5 >= 64  # bits of randomness
    with tenant_context(cancer):
        assert WaiverCode.objects.filter(code=code, purpose="Hardship").exists()
    # A code of one's own must be long enough not to be guessed in a few tries.
    page = admin.post("/payments/settings/waiver-codes/", {"code": "FREE"}, follow=True)
    with tenant_context(cancer):
        assert not WaiverCode.objects.filter(code="FREE").exists()
