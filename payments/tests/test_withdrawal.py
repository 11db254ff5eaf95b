"""A patient deletes an unsent request or withdraws a sent one (issue 14, item 10): the refund
rules are shown before they confirm, the money follows them, the care team sees the case as
withdrawn, and nobody else can do it for them."""

from __future__ import annotations

import io
from typing import Any

from django.core import mail
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from imaging.models import Upload
from intake.models import Case
from payments.connect.models import StripeAccount
from payments.models import Payment
from payments.tests.conftest import case_awaiting_payment, checkout_opened, signed_in, webhook_post
from review.withdrawal import NOT_WITHDRAWABLE
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.stripe_double import StripeDouble


def _paid_case(cancer: Institution, account: StripeAccount, double: StripeDouble) -> Case:
    case = case_awaiting_payment(cancer)
    session_id = checkout_opened(signed_in(cancer, "patient@cancer.example.com"), case)
    double.pay(session_id)
    webhook_post(
        double.event("checkout.session.completed", double.sessions[session_id], account=account.account_id)
    )
    with tenant_context(cancer):
        case.refresh_from_db()
    assert case.status == Case.Status.SUBMITTED
    return case


def test_it_shows_the_refund_and_refunds_before_review_starts(
    cancer: Institution,
    charging_cancer: StripeAccount,
    stripe_api: StripeDouble,
    django_capture_on_commit_callbacks: Any,
    eager_tasks: None,
) -> None:
    case = _paid_case(cancer, charging_cancer, stripe_api)
    patient = signed_in(cancer, "patient@cancer.example.com")
    status_page = patient.get(f"/cases/{case.public_id}/").content.decode()
    assert f'href="/cases/{case.public_id}/withdraw/"' in status_page
    page = patient.get(f"/cases/{case.public_id}/withdraw/").content.decode()
    rules = page[page.index('data-testid="refund-rules"') :]
    assert "refunded in full" in rules[:400] and "$100.00" in rules[:400]

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = patient.post(f"/cases/{case.public_id}/withdraw/")
    assert response["Location"] == f"/cases/{case.public_id}/"
    with tenant_context(cancer):
        case.refresh_from_db()
        payment = Payment.objects.get(case=case)
    assert case.status == Case.Status.WITHDRAWN
    assert payment.status == Payment.Status.REFUNDED
    (refund,) = stripe_api.calls("POST", "/v1/refunds")
    assert refund.stripe_account == charging_cancer.account_id
    subjects = {m.subject for m in mail.outbox}
    assert any("has been withdrawn" in s for s in subjects) and any("refunded" in s for s in subjects)
    assert "Withdrawn" in patient.get(f"/cases/{case.public_id}/").content.decode()
    # A second click changes nothing and refunds nothing more.
    patient.post(f"/cases/{case.public_id}/withdraw/")
    assert len(stripe_api.calls("POST", "/v1/refunds")) == 1


def test_it_says_no_refund_once_a_physician_has_started(
    cancer: Institution, charging_cancer: StripeAccount, stripe_api: StripeDouble
) -> None:
    case = _paid_case(cancer, charging_cancer, stripe_api)
    with tenant_context(cancer):
        Case.objects.filter(pk=case.pk).update(status=Case.Status.IN_REVIEW)
    patient = signed_in(cancer, "patient@cancer.example.com")
    page = patient.get(f"/cases/{case.public_id}/withdraw/").content.decode()
    assert "is not refunded" in page
    patient.post(f"/cases/{case.public_id}/withdraw/")
    with tenant_context(cancer):
        assert Case.objects.get(pk=case.pk).status == Case.Status.WITHDRAWN
        assert Payment.objects.get(case=case).status == Payment.Status.PAID
    assert stripe_api.calls("POST", "/v1/refunds") == []


def test_it_refuses_to_withdraw_an_answered_case(cancer: Institution, no_stripe: None) -> None:
    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        Case.objects.filter(pk=case.pk).update(status=Case.Status.RELEASED)
    patient = signed_in(cancer, "patient@cancer.example.com")
    page = patient.post(f"/cases/{case.public_id}/withdraw/", follow=True).content.decode()
    assert str(NOT_WITHDRAWABLE) in page
    with tenant_context(cancer):
        assert Case.objects.get(pk=case.pk).status == Case.Status.RELEASED


def test_it_deletes_a_draft_with_its_files(
    cancer: Institution, no_stripe: None, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(cancer):
        owner = User.objects.get(email="patient@cancer.example.com")
        case = Case.objects.create(owner=owner, patient_name="Pat Patient")
        files = tenant_storage()
        keys = [f"uploads/{case.public_id}/a", f"dicom/{case.public_id}/b", f"reports/{case.public_id}/c"]
        for key in keys:
            files.save(key, io.BytesIO(b"x"), 1)
        Upload.objects.create(case=case, owner=owner, kind=Upload.Kind.IMAGING, storage_key=keys[0])
        other = Case.objects.create(owner=owner, patient_name="Another")
        files.save(f"uploads/{other.public_id}/keep", io.BytesIO(b"y"), 1)
    patient = signed_in(cancer, "patient@cancer.example.com")
    assert "cannot be undone" in patient.get(f"/cases/{case.public_id}/delete/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = patient.post(f"/cases/{case.public_id}/delete/")
    assert response["Location"] == "/cases/"
    with tenant_context(cancer):
        assert not Case.objects.filter(pk=case.pk).exists()
        assert not any(files.exists(key) for key in keys)
        assert files.exists(f"uploads/{other.public_id}/keep")


def test_it_keeps_outsiders_from_deleting_or_withdrawing(
    cancer: Institution, neuro: Institution, no_stripe: None
) -> None:
    sent = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        owner = User.objects.get(email="patient@cancer.example.com")
        draft = Case.objects.create(owner=owner)
        User.objects.create_user("someone-else@patients.example.com", "a-long-password-1")
    stranger = signed_in(cancer, "someone-else@patients.example.com")
    staff = signed_in(cancer, "coordinator@cancer.example.com", staff_second_factor=True)
    logged_out = Client(HTTP_HOST="cancer.localhost")
    other_tenant = signed_in(neuro, "patient@neuro.example.com")
    for client in (stranger, staff, other_tenant):
        for case, action in ((sent, "withdraw"), (draft, "delete")):
            assert client.get(f"/cases/{case.public_id}/{action}/").status_code == 404
            assert client.post(f"/cases/{case.public_id}/{action}/").status_code == 404
    for case, action in ((sent, "withdraw"), (draft, "delete")):
        response = logged_out.post(f"/cases/{case.public_id}/{action}/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    with tenant_context(cancer):
        assert Case.objects.get(pk=sent.pk).status == Case.Status.AWAITING_PAYMENT
        assert Case.objects.filter(pk=draft.pk).exists()
