"""Fixtures for the payments tests: the Stripe test double, a charging institution with a
connected Stripe account, a case waiting for payment, and signed webhook deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from config.celery_app import app as celery_app
from intake.models import Case
from intake.status import case_number_assign
from payments.connect.models import StripeAccount
from tenants.models import Institution, InstitutionSettings
from tests.staff import staff_force_login
from tests.stripe_double import StripeDouble, signature_header

WEBHOOK_SECRET = "whsec_test_secondread_payments"
PLATFORM_KEY = "sk_test_platform_key"


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeDouble]:
    double = StripeDouble().start()
    yield double
    double.stop()


@pytest.fixture
def stripe_api(stripe_server: StripeDouble, settings: Any) -> StripeDouble:
    """The platform configured with a Stripe key, pointed at the test double."""
    settings.STRIPE_SECRET_KEY = PLATFORM_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    stripe_server.requests.clear()
    stripe_server.on_api_request = None
    return stripe_server


@pytest.fixture
def no_stripe(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_API_BASE = ""


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run tasks queued after commit in this process, so their emails land in mail.outbox."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def fee_set(
    institution: Institution, amount: str = "100.00", currency: str = "usd", enabled: bool = True
) -> None:
    InstitutionSettings.objects.update_or_create(
        institution=institution,
        defaults={
            "fee_enabled": enabled,
            "fee_amount": Decimal(amount),
            "fee_currency": currency,
            "fee_waivers_only": False,
        },
    )


def account_connect(
    institution: Institution, double: StripeDouble, *, charges_enabled: bool = True
) -> StripeAccount:
    """A Stripe account of the institution, known to the double, connected to the platform."""
    account_id = f"acct_test_{institution.slug}_{len(double.accounts)}"
    double.accounts[account_id] = {
        "id": account_id,
        "object": "account",
        "type": "standard",
        "charges_enabled": charges_enabled,
        "details_submitted": charges_enabled,
        "payouts_enabled": charges_enabled,
        "metadata": {},
    }
    StripeAccount.objects.filter(institution=institution, disconnected_at__isnull=True).delete()
    return StripeAccount.objects.create(
        institution=institution,
        account_id=account_id,
        charges_enabled=charges_enabled,
        details_submitted=charges_enabled,
    )


@pytest.fixture
def charging_cancer(cancer: Institution, stripe_api: StripeDouble) -> StripeAccount:
    """The cancer centre charges $100 and has its own Stripe account connected."""
    fee_set(cancer, "100.00")
    return account_connect(cancer, stripe_api)


def case_awaiting_payment(institution: Institution, email: str | None = None) -> Case:
    with tenant_context(institution):
        owner = User.objects.get(email=email or f"patient@{institution.slug}.example.com")
        case = Case.objects.create(
            owner=owner,
            patient_name="Pat Patient",
            patient_email="pat@family.example.com",
            status=Case.Status.AWAITING_PAYMENT,
            wizard_step="payment",
        )
        case_number_assign(case=case, prefix=institution.slug.upper()[:3])
        return case


def host_of(institution: Institution) -> str:
    return str(institution.domains.get(is_primary=True).domain)


def signed_in(institution: Institution, email: str, *, staff_second_factor: bool = False) -> Client:
    """A client of ``institution``'s site signed in as ``email``. Staff pages need a session
    that passed the second factor: ``staff_second_factor`` gives one (tests/staff.py's way)."""
    client = Client(HTTP_HOST=host_of(institution))
    if staff_second_factor:
        staff_force_login(client, email)
        return client
    with tenant_context(institution):
        client.force_login(User.objects.get(email=email))
    return client


def webhook_post(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> Any:
    client = Client(HTTP_HOST=settings.PLATFORM_DOMAIN)
    return client.post(
        "/stripe/webhook",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature_header(payload, secret, timestamp),
    )


def checkout_opened(client: Client, case: Case) -> str:
    """The patient presses "Pay by card"; returns the Checkout Session id it opened."""
    response = client.post(f"/payments/case/{case.public_id}/pay/")
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert "/pay/cs_test_" in location, location
    return location.rsplit("/", 1)[-1]
