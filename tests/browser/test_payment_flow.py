"""Paying for a second opinion, in Chromium against a live server wired to the Stripe test
double: the cancer centre's admin connects the centre's own Stripe account, a patient pays
through Checkout, Stripe's signed webhook (delivered three times) sends the case to the queue
once, the coordinator declines it and the payment is refunded, and the revenue shows for the
cancer centre and not for the neuro institute."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from accounts.models import User
from config.celery_app import app as celery_app
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from intake.status import case_number_assign
from payments.connect.models import ProcessedEvent, StripeAccount
from payments.models import Payment
from tenants.models import Institution, InstitutionSettings
from tests.live import BASE_DIR, BIN, LiveServer, _wait_for_http, child_env, free_port, process_stop
from tests.staff import staff_sign_in
from tests.stripe_double import StripeDouble, signature_header
from tests.waiting import celery_idle, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

WEBHOOK_SECRET = "whsec_browser_test_secret"
GUNICORN_OPTIONS = ["--workers", "1", "--threads", "8", "--worker-class", "gthread", "--log-level", "warning"]


@pytest.fixture(scope="module")
def stripe_double() -> Iterator[StripeDouble]:
    double = StripeDouble().start()
    yield double
    double.stop()


# The web server and the worker both talk to Stripe (the worker makes refunds, from the outbox),
# so this module runs a worker of its own with the same Stripe settings, on a queue of its own.
PAYMENT_QUEUE = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-payments"


@pytest.fixture(scope="module")
def paying_platform(
    django_db_setup: None, stripe_double: StripeDouble, test_mail_dir: Path
) -> Iterator[LiveServer]:
    """SecondRead (gunicorn and a Celery worker) with the platform's Stripe key, talking to the
    test double; their emails land in ``test_mail_dir``."""
    port = free_port()
    env = child_env(
        PLATFORM_PORT=str(port),
        STRIPE_SECRET_KEY="sk_test_browser_platform",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_double.url,
        SR_TEST_MAIL_DIR=str(test_mail_dir),
        SR_TEST_QUEUE=PAYMENT_QUEUE,
    )
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--queues", PAYMENT_QUEUE, "--hostname", f"payments-{os.getpid()}@%h",
         "--without-mingle", "--without-gossip"],
        cwd=BASE_DIR,
        env=env,
    )  # fmt: skip
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}", *GUNICORN_OPTIONS],
        cwd=BASE_DIR,
        env=env,
    )
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/healthz", settings.PLATFORM_DOMAIN, process)
        yield LiveServer(port, test_mail_dir)
    finally:
        process_stop(process)
        process_stop(worker)


@pytest.fixture(scope="module")
def case_to_pay(paying_platform: LiveServer, django_db_blocker: Any) -> Iterator[Case]:
    """A cancer-centre case waiting for its $100 fee (committed, so the live server sees it)."""
    with django_db_blocker.unblock():
        cancer = Institution.objects.get(slug="cancer")
        waivers_only = InstitutionSettings.objects.filter(institution=cancer, fee_waivers_only=True).exists()
        InstitutionSettings.objects.update_or_create(
            institution=cancer,
            defaults={
                "fee_enabled": True,
                "fee_amount": Decimal("100.00"),
                "fee_currency": "usd",
                "fee_waivers_only": False,  # by card, once the admin connects Stripe below
            },
        )
        StripeAccount.objects.filter(institution=cancer).delete()
        with schema_context("cancer"):
            case = Case.objects.create(
                owner_id=_user_id("cancer", "patient@cancer.example.com"),
                patient_name="Pat Patient",
                status=Case.Status.AWAITING_PAYMENT,
                wizard_step="payment",
            )
            case_number_assign(case=case, prefix="LCC")
    yield case
    with django_db_blocker.unblock():
        with schema_context("cancer"):
            Payment.objects.filter(case_id=case.pk).delete()
            Case.objects.filter(pk=case.pk).delete()
        ProcessedEvent.objects.filter(institution__slug="cancer").delete()
        StripeAccount.objects.filter(institution__slug="cancer").delete()
        InstitutionSettings.objects.filter(institution__slug="cancer").update(fee_waivers_only=waivers_only)


def _user_id(schema: str, email: str) -> int:
    from accounts.models import User

    with schema_context(schema):
        return int(User.objects.get(email=email).pk)


def _deliver(server: LiveServer, payload: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/stripe/webhook",
        data=payload,
        method="POST",
        headers={
            "Host": settings.PLATFORM_DOMAIN,
            "Content-Type": "application/json",
            "Stripe-Signature": signature_header(payload, WEBHOOK_SECRET),
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return dict(json.loads(response.read()))


def _emails_about(mail_dir: Path, case_number: str) -> list[str]:
    """Subjects of the emails sent so far (by the live server or the worker) naming the case."""
    subjects = []
    for path in sorted(mail_dir.glob("*.log")):
        for raw in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if not raw.strip():
                continue
            message = email.message_from_bytes(raw.strip(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            subject = " ".join(str(message["Subject"]).split())
            if case_number in subject or case_number in text:
                subjects.append(subject)
    return sorted(subjects)


def _wait_for_emails(mail_dir: Path, case_number: str, count: int) -> list[str]:
    """The subjects of the emails about the case, once ``count`` have arrived and the worker has
    nothing left to run (so a duplicate would already be there)."""
    wait_until(
        lambda: len(_emails_about(mail_dir, case_number)) >= count,
        timeout=30,
        message=f"fewer than {count} emails about the case arrived",
    )
    wait_until(
        lambda: celery_idle(celery_app, PAYMENT_QUEUE),
        timeout=30,
        message="the worker never ran out of work",
        interval=0.3,
    )
    return _emails_about(mail_dir, case_number)


def test_it_takes_a_patients_payment_through_the_institutions_stripe_account_and_refunds_it(
    browser: Any,
    paying_platform: LiveServer,
    stripe_double: StripeDouble,
    case_to_pay: Case,
) -> None:
    site = paying_platform.url("cancer").rstrip("/")

    # The admin connects the cancer centre's own Stripe account.
    admin = browser.new_context().new_page()
    staff_sign_in(admin, "admin@cancer.example.com", base_url=site)
    admin.goto(site + "/payments/settings/")
    assert admin.get_attribute("[data-testid=stripe-state]", "data-state") == "not_connected"
    assert "Online payment is not set up" in admin.inner_text("[data-testid=stripe-state]")
    admin.click("text=Connect with Stripe")
    admin.wait_for_url(stripe_double.url + "/onboard/**")
    admin.click("text=Finish set-up")
    admin.wait_for_url(site + "/payments/settings/")
    assert admin.get_attribute("[data-testid=stripe-state]", "data-state") == "active"
    account = StripeAccount.objects.get(institution__slug="cancer", disconnected_at__isnull=True)

    # The patient pays the $100 they were shown, on Stripe's (the double's) checkout page.
    patient = browser.new_context().new_page()
    patient.goto(site + "/accounts/login/")
    patient.fill("input[name=login]", "patient@cancer.example.com")
    patient.fill("input[name=password]", DEMO_PASSWORD)
    patient.click("form:has(input[name=login]) button[type=submit]")
    patient.wait_for_load_state()
    patient.goto(site + f"/payments/case/{case_to_pay.public_id}/")
    assert patient.inner_text("[data-testid=payment-amount]") == "$100.00"
    patient.click("text=Pay by card")
    patient.wait_for_url(stripe_double.url + "/pay/**")
    assert patient.inner_text("[data-testid=amount]") == "100.00 USD"
    session_id = patient.url.rsplit("/", 1)[-1]
    (checkout_call,) = stripe_double.calls("POST", "/v1/checkout/sessions")
    assert checkout_call.stripe_account == account.account_id
    patient.click("text=Pay")
    patient.wait_for_url(f"**/payments/case/{case_to_pay.public_id}/return/**")
    # Back from Stripe, but nothing is settled until Stripe's webhook says so.
    assert patient.get_attribute("[data-testid=payment-status]", "data-status") == "pending"
    with schema_context("cancer"):
        assert Case.objects.get(pk=case_to_pay.pk).status == Case.Status.AWAITING_PAYMENT

    # Stripe delivers the signed event three times: the case enters the queue once.
    event = stripe_double.event(
        "checkout.session.completed", stripe_double.sessions[session_id], account=account.account_id
    )
    outcomes = [_deliver(paying_platform, event)["outcome"] for _ in range(3)]
    assert outcomes == ["applied", "duplicate", "duplicate"]
    patient.wait_for_selector("[data-testid=payment-status][data-status=paid]", timeout=15_000)
    with schema_context("cancer"):
        case = Case.objects.get(pk=case_to_pay.pk)
        payment = Payment.objects.get(case=case)
    assert case.status == Case.Status.SUBMITTED
    assert (payment.status, payment.amount_paid) == (Payment.Status.PAID, 10000)
    assert ProcessedEvent.objects.filter(event_id=json.loads(event)["id"]).count() == 1
    # One "received" email and one receipt, however often the event came.
    subjects = _wait_for_emails(paying_platform.mail_dir, str(case.number), 2)
    staff_notices = [subject for subject in subjects if subject.startswith("New case submitted")]
    assert [subject for subject in subjects if subject not in staff_notices] == [
        f"Your case has been received ({case.number})",
        "Your payment receipt · Lakeside Cancer Center",
    ]
    # Staff hear of the new case (staff notifications), at most once each, not once per event.
    with schema_context("cancer"):
        staff = User.objects.filter(is_active=True).exclude(email__startswith="patient@").count()
    assert set(staff_notices) == {f"New case submitted: {case.number}"}
    assert len(staff_notices) <= staff

    # Revenue: the cancer centre's admin sees the $100; the neuro institute's admin does not.
    admin.goto(site + "/payments/")
    assert "$100.00" in admin.inner_text("[data-testid=revenue-total]")
    assert str(case.number) in admin.inner_text("[data-testid=payments]")
    neuro_admin = browser.new_context().new_page()
    neuro_site = paying_platform.url("neuro").rstrip("/")
    staff_sign_in(neuro_admin, "admin@neuro.example.com", base_url=neuro_site)
    neuro_admin.goto(neuro_site + "/payments/")
    assert "No card payments yet" in neuro_admin.inner_text("[data-testid=revenue-total]")
    assert str(case.number) not in neuro_admin.content()

    # The coordinator declines the case: the payment is refunded on the centre's account.
    coordinator = browser.new_context().new_page()
    staff_sign_in(coordinator, "coordinator@cancer.example.com", base_url=site)
    coordinator.goto(site + f"/workspace/cases/{case.public_id}/")
    coordinator.click("text=Decline the case")
    coordinator.fill("textarea[name=reason]", "This question is outside our centre's specialties.")
    coordinator.click("text=Decline (refunds a payment)")
    coordinator.wait_for_load_state()
    # The decline asked for the refund; the worker makes it at Stripe once the decline committed.
    assert "is being refunded through Stripe" in coordinator.inner_text("body")
    (refund_call,) = wait_until(
        lambda: stripe_double.calls("POST", "/v1/refunds"), timeout=30, message="the refund was never made"
    )

    def refunded() -> bool:
        with schema_context("cancer"):
            return Payment.objects.get(pk=payment.pk).status == Payment.Status.REFUNDED

    wait_until(refunded, timeout=30, message="the refund was never recorded")
    assert refund_call.stripe_account == account.account_id
    assert refund_call.body["payment_intent"] == stripe_double.sessions[session_id]["payment_intent"]
    with schema_context("cancer"):
        payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED and payment.amount_refunded == 10000
    patient.goto(site + f"/payments/case/{case.public_id}/")
    assert patient.get_attribute("[data-testid=payment-status]", "data-status") == "refunded"
    subjects = _wait_for_emails(paying_platform.mail_dir, str(case.number), 4 + len(staff_notices))
    assert "Your payment has been refunded · Lakeside Cancer Center" in subjects
    assert len(subjects) == 4 + len(staff_notices)  # and the decline notice

    for page in (admin, patient, neuro_admin, coordinator):
        page.context.close()
