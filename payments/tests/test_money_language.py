"""Amounts are written the way the reader's language writes money: a patient reading Spanish
sees ``1.234,50 €`` on the payment page and in their receipt, one reading English ``€1,234.50``;
staff pages stay English."""

from __future__ import annotations

from django.core import mail
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from intake.models import Case
from payments.connect.models import StripeAccount
from payments.models import Payment
from payments.money import money_format
from payments.notifications import payment_receipt_send
from payments.tests.conftest import case_awaiting_payment, fee_set, signed_in
from tenants.models import Institution
from tests.stripe_double import StripeDouble

NBSP = "\u00a0"  # CLDR puts a no-break space between a Spanish amount and its currency


def _in_spanish(client: Client) -> Client:
    client.cookies["django_language"] = "es"
    return client


def test_it_writes_amounts_as_each_language_does() -> None:
    assert money_format(amount=123450, currency="eur", language="es") == f"1.234,50{NBSP}€"
    assert money_format(amount=123450, currency="eur", language="en") == "€1,234.50"
    assert money_format(amount=10000, currency="usd", language="en") == "$100.00"
    assert money_format(amount=10000, currency="usd", language="es") == f"100,00{NBSP}US$"


def test_the_payment_page_shows_the_fee_in_the_patients_language(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    fee_set(cancer, "1234.50", currency="eur")
    case = case_awaiting_payment(cancer)
    spanish = _in_spanish(signed_in(cancer, "patient@cancer.example.com"))
    page = spanish.get(f"/payments/case/{case.public_id}/").content.decode()
    assert f"1.234,50{NBSP}€" in page and "€1,234.50" not in page
    english = signed_in(cancer, "patient@cancer.example.com")
    page = english.get(f"/payments/case/{case.public_id}/").content.decode()
    assert "€1,234.50" in page and f"1.234,50{NBSP}€" not in page


def test_the_portal_price_notice_follows_the_language(
    cancer: Institution, charging_cancer: StripeAccount
) -> None:
    fee_set(cancer, "1234.50", currency="eur")
    spanish = _in_spanish(signed_in(cancer, "patient@cancer.example.com"))
    assert f"1.234,50{NBSP}€" in spanish.get("/").content.decode()
    assert "€1,234.50" in signed_in(cancer, "patient@cancer.example.com").get("/").content.decode()


def test_a_spanish_patients_receipt_writes_the_amount_in_spanish(
    cancer: Institution, charging_cancer: StripeAccount
) -> None:
    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        User.objects.filter(email="patient@cancer.example.com").update(language="es")
        payment = Payment.objects.create(
            case=case, amount=123450, currency="eur", status=Payment.Status.PAID, amount_paid=123450,
            paid_at=timezone.now(),
        )  # fmt: skip
        mail.outbox.clear()
        assert payment_receipt_send(payment_id=payment.pk)
    (receipt,) = [m for m in mail.outbox if "patient@cancer.example.com" in m.to]
    assert f"1.234,50{NBSP}€" in receipt.body and "€1,234.50" not in receipt.body


def test_the_refund_rules_write_the_amount_in_the_patients_language(
    cancer: Institution, charging_cancer: StripeAccount
) -> None:
    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        Payment.objects.create(
            case=case, amount=123450, currency="eur", status=Payment.Status.PAID, amount_paid=123450,
            paid_at=timezone.now(),
        )  # fmt: skip
        Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED)
    spanish = _in_spanish(signed_in(cancer, "patient@cancer.example.com"))
    page = spanish.get(f"/cases/{case.public_id}/withdraw/").content.decode()
    rules = page[page.index('data-testid="refund-rules"') :][:600]
    assert f"1.234,50{NBSP}€" in rules and "€1,234.50" not in rules
