"""A fee patients can pay from day one (issue 14, item 5): going live with a fee needs a
connected Stripe account or the explicit choice of waiver codes only, and the portal tells
patients how they can pay today, never "by card" when card payment is impossible."""

from __future__ import annotations

from typing import Any

from django.test import Client

from institutions.forms import CARD_PAYMENT_UNAVAILABLE
from institutions.institution_settings import FEE_NOT_PAYABLE
from institutions.tests.helpers import applicant_sign_up
from payments.connect.models import StripeAccount
from payments.tests.conftest import account_connect, fee_set
from tenants.models import Institution, InstitutionSettings, Onboarding
from tests.stripe_double import StripeDouble

EMAIL = "grace@lakeview.example.org"


def _notice(client: Client) -> str:
    page = client.get("/").content.decode()
    start = page.index('data-testid="price-notice"')
    return page[start : page.index("</p>", start)]


def test_it_says_card_only_when_card_payment_works(
    cancer: Institution, cancer_client: Client, stripe_api: StripeDouble
) -> None:
    fee_set(cancer, "100.00")
    account_connect(cancer, stripe_api)
    notice = _notice(cancer_client)
    assert 'data-payment="card"' in notice and "pay by card" in notice

    StripeAccount.objects.filter(institution=cancer).update(charges_enabled=False)
    notice = _notice(cancer_client)
    assert 'data-payment="unavailable"' in notice
    assert "by card" not in notice.replace("Card payment is not available", "")
    assert "waiver code" in notice


def test_it_says_waiver_codes_when_the_institution_chose_them(
    cancer: Institution, cancer_client: Client, no_stripe: None
) -> None:
    fee_set(cancer, "100.00")
    InstitutionSettings.objects.filter(institution=cancer).update(fee_waivers_only=True)
    notice = _notice(cancer_client)
    assert 'data-payment="waivers"' in notice and "waiver code" in notice and "card" not in notice


def _drafted(client: Client, capture: Any) -> Client:
    applicant_sign_up(client, capture, email=EMAIL, name="Lakeview Imaging")
    client.post("/start/step/subdomain/", {"slug": "lakeview"})
    client.post(
        "/start/step/branding/",
        {"primary_colour": "#5b2a86", "accent_colour": "#006d5b", "tagline": "", "welcome_text": "",
         "support_email": "", "support_phone": "", "postal_address": ""},
    )  # fmt: skip
    client.post("/start/step/texts/", {"consent_text": "I agree", "terms_text": "", "privacy_text": ""})
    client.post("/start/step/service/", {"turnaround_business_days": "6", "specialties": ""})
    client.post("/start/step/team/", {"action": "continue"})
    client.post("/start/step/website/", {"embed_origins": ""})
    return client


def _go_live(client: Client, capture: Any) -> str:
    with capture(execute=False):
        return client.post("/start/step/go-live/", follow=True).content.decode()


FEE = {"fee_enabled": "on", "fee_amount": "100.00", "fee_currency": "usd"}


def test_it_refuses_card_payment_when_the_platform_takes_none(
    platform_client: Client, django_capture_on_commit_callbacks: Any, no_stripe: None
) -> None:
    client = _drafted(platform_client, django_capture_on_commit_callbacks)
    page = client.post("/start/step/fee/", {**FEE, "fee_payment": "card"}).content.decode()
    assert CARD_PAYMENT_UNAVAILABLE in page
    assert not InstitutionSettings.objects.get(institution__slug="lakeview").fee_enabled


def test_it_goes_live_with_a_fee_only_when_patients_can_pay_it(
    platform_client: Client, django_capture_on_commit_callbacks: Any, stripe_api: StripeDouble
) -> None:
    client = _drafted(platform_client, django_capture_on_commit_callbacks)
    response = client.post("/start/step/fee/", {**FEE, "fee_payment": "card"})
    assert response["Location"] == "/start/step/fee/"  # stays to connect Stripe
    page = client.get("/start/step/fee/").content.decode()
    assert 'data-testid="stripe-connect"' in page and FEE_NOT_PAYABLE in page

    page = _go_live(client, django_capture_on_commit_callbacks)
    assert FEE_NOT_PAYABLE in page
    assert Onboarding.objects.get(email=EMAIL).state == Onboarding.State.DRAFT

    # Connecting Stripe from the Fee step: the account is the new institution's.
    response = client.post("/start/step/fee/stripe/connect/")
    assert response.status_code == 302 and "/onboard/acct_test_" in response["Location"]
    account = StripeAccount.objects.get(institution__slug="lakeview")
    (link,) = stripe_api.calls("POST", "/v1/account_links")
    assert link.body["return_url"].endswith("/start/step/fee/stripe/return/")
    stripe_api.onboard(account.account_id)
    page = client.get("/start/step/fee/stripe/return/", follow=True).content.decode()
    assert "patients can pay by card" in page
    _go_live(client, django_capture_on_commit_callbacks)
    assert Onboarding.objects.get(email=EMAIL).state == Onboarding.State.QUEUED


def test_it_goes_live_with_waiver_codes_only(
    platform_client: Client, django_capture_on_commit_callbacks: Any, no_stripe: None
) -> None:
    client = _drafted(platform_client, django_capture_on_commit_callbacks)
    client.post("/start/step/fee/", {**FEE, "fee_payment": "waivers"})
    assert InstitutionSettings.objects.get(institution__slug="lakeview").fee_waivers_only
    _go_live(client, django_capture_on_commit_callbacks)
    assert Onboarding.objects.get(email=EMAIL).state == Onboarding.State.QUEUED


def test_it_keeps_outsiders_from_connecting_an_account(
    platform_client: Client, neuro_client: Client, stripe_api: StripeDouble
) -> None:
    for client in (platform_client, neuro_client):
        response = client.post("/start/step/fee/stripe/connect/")
        assert response.status_code in (302, 404)
        assert "/onboard/" not in response.get("Location", "")
        response = client.get("/start/step/fee/stripe/return/")
        assert response.status_code in (302, 404)
    assert stripe_api.calls("POST", "/v1/accounts") == []
