"""Addenda: a signed, released opinion stays as it was signed; the reviewer adds a signed
addendum, the patient reads it on their page and in a new PDF (the original PDF still there),
is emailed through the outbox, and every step is on record."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.test import Client, TestCase
from django.utils.html import escape
from django_tenants.utils import schema_context
from pypdf import PdfReader

from audit.models import AuditEvent
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.addenda import (
    ADDENDUM_EMAIL_SUBJECT,
    ADDENDUM_EMPTY_MESSAGE,
    ADDENDUM_NOT_SIGNED_MESSAGE,
    ADDENDUM_WRONG_SECRET_MESSAGE,
)
from review.models import CaseAssignment, Opinion, OpinionAddendum
from review.tests.test_opinion import OPINION
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.cases import user_in
from tests.outbox import outbox_summaries
from tests.staff import staff_force_login

ADDENDUM = "The pathology report received after signing confirms a low-grade glioma (WHO grade 2)."


@pytest.fixture
def assigned_case(neuro: Institution, make_case: Callable[..., Case]) -> Case:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    return case


def _url(case: Case, tail: str) -> str:
    return f"/workspace/cases/{case.public_id}/{tail}"


def _sign_and_release(staff_client: Callable[[str], Client], case: Case) -> Client:
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(case, "opinion/draft"), OPINION)
    with TestCase.captureOnCommitCallbacks(execute=True):
        reviewer.post(_url(case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    staff_client("coordinator").post(_url(case, "opinion/release"))
    return reviewer


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _download(client: Client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 302, url
    download = client.get(response["Location"])
    assert download.status_code == 200
    return download.getvalue()


def test_it_adds_a_signed_addendum_the_patient_reads_in_a_new_pdf(
    neuro: Institution,
    assigned_case: Case,
    staff_client: Callable[[str], Client],
    neuro_client: Client,
    outbox_email: None,
) -> None:
    reviewer = _sign_and_release(staff_client, assigned_case)
    with schema_context(neuro.schema_name):
        opinion = Opinion.objects.get(case=assigned_case)
    signed = (opinion.content_sha256, opinion.findings, opinion.pdf_key)
    before = outbox_summaries(neuro.schema_name)

    with TestCase.captureOnCommitCallbacks(execute=True):
        page = reviewer.post(
            _url(assigned_case, "opinion/addenda"), {"text": ADDENDUM, "secret": DEMO_PASSWORD}, follow=True
        ).content.decode()
    assert "Addendum signed. The patient has been emailed." in page
    assert ADDENDUM in page

    with schema_context(neuro.schema_name):
        opinion.refresh_from_db()
        addendum = OpinionAddendum.objects.get(opinion=opinion)
        # The signed opinion itself did not change.
        assert (opinion.content_sha256, opinion.findings, opinion.pdf_key) == signed
        assert addendum.signer_name == "Dr. Robin Reyes" and addendum.content_sha256
        assert AuditEvent.objects.filter(
            action="opinion.addendum",
            allowed=True,
            case_id=assigned_case.pk,
            object_ref=str(addendum.public_id),
        ).exists()
    # The patient is told, through the outbox, with the change.
    assert outbox_summaries(neuro.schema_name)[len(before) :] == [
        f"{ADDENDUM_EMAIL_SUBJECT} ({assigned_case.number})"
    ]

    staff_force_login(neuro_client, "patient@neuro.example.com")
    page = neuro_client.get(f"/opinions/{assigned_case.public_id}/").content.decode()
    assert ADDENDUM in page and "Added after signing" in page
    assert 'data-testid="pdf-versions"' in page
    current = _pdf_text(_download(neuro_client, f"/opinions/{assigned_case.public_id}/pdf"))
    assert "Addendum 1" in current and "WHO grade 2" in current and "low-grade glioma" in current
    original = _pdf_text(_download(neuro_client, f"/opinions/{assigned_case.public_id}/pdf/v1"))
    assert "low-grade glioma" in original and "Addendum" not in original
    assert neuro_client.get(f"/opinions/{assigned_case.public_id}/pdf/v3").status_code == 404


def test_it_shows_an_addendum_signed_before_release_with_the_opinion_and_emails_nothing_extra(
    neuro: Institution,
    assigned_case: Case,
    staff_client: Callable[[str], Client],
    outbox_email: None,
) -> None:
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    before = outbox_summaries(neuro.schema_name)
    page = reviewer.post(
        _url(assigned_case, "opinion/addenda"), {"text": ADDENDUM, "secret": DEMO_PASSWORD}, follow=True
    ).content.decode()
    assert "The patient reads it with the opinion." in page
    assert outbox_summaries(neuro.schema_name) == before


def test_it_refuses_an_addendum_with_a_wrong_secret_no_text_or_no_signed_opinion(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    url = _url(assigned_case, "opinion/addenda")
    page = reviewer.post(url, {"text": ADDENDUM, "secret": DEMO_PASSWORD}, follow=True).content.decode()
    assert escape(ADDENDUM_NOT_SIGNED_MESSAGE) in page
    reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    page = reviewer.post(url, {"text": ADDENDUM, "secret": "wrong"}, follow=True).content.decode()
    assert escape(ADDENDUM_WRONG_SECRET_MESSAGE) in page
    page = reviewer.post(url, {"text": "  ", "secret": DEMO_PASSWORD}, follow=True).content.decode()
    assert escape(ADDENDUM_EMPTY_MESSAGE) in page
    with schema_context(neuro.schema_name):
        assert not OpinionAddendum.objects.exists()
        assert (
            AuditEvent.objects.filter(
                action="opinion.addendum", allowed=False, case_id=assigned_case.pk
            ).count()
            == 3
        )


def test_it_writes_a_lost_addendum_pdf_again_and_keeps_each_version(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = _sign_and_release(staff_client, assigned_case)
    for text in ("First addendum text.", "Second addendum text."):
        with TestCase.captureOnCommitCallbacks(execute=True):
            reviewer.post(_url(assigned_case, "opinion/addenda"), {"text": text, "secret": DEMO_PASSWORD})
    with schema_context(neuro.schema_name):
        first = OpinionAddendum.objects.filter(opinion__case=assigned_case).first()
        assert first is not None
        tenant_storage().delete(first.pdf_key)  # its write after the commit failed
    coordinator = staff_client("coordinator")
    second_version = _pdf_text(_download(coordinator, _url(assigned_case, "opinion/pdf/v2")))
    assert "First addendum text." in second_version and "Second addendum text." not in second_version
    current = _pdf_text(_download(coordinator, _url(assigned_case, "opinion/pdf")))
    assert "First addendum text." in current and "Second addendum text." in current


def test_it_refuses_addenda_and_versions_to_outsiders(
    neuro: Institution,
    assigned_case: Case,
    staff_client: Callable[[str], Client],
    cancer_client: Client,
) -> None:
    _sign_and_release(staff_client, assigned_case)
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    staff_force_login(cancer_client, "reviewer1@cancer.example.com")
    signed_out = Client(HTTP_HOST="neuro.localhost")
    url = _url(assigned_case, "opinion/addenda")
    # Only the case's reviewer adds one: not another reviewer, the coordinator, the patient,
    # another institution's reviewer, or someone signed out.
    for client in (
        staff_client("reviewer2"),
        staff_client("coordinator"),
        patient,
        cancer_client,
        signed_out,
    ):
        response = client.post(url, {"text": "Not mine to add.", "secret": DEMO_PASSWORD})
        assert response.status_code in (302, 403, 404)
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]
    # The PDF versions: staff of the case, and the patient (theirs), only.
    other_patient = Client(HTTP_HOST="neuro.localhost")
    with schema_context(neuro.schema_name):
        from accounts.models import User

        User.objects.create_user("stranger@example.com", "a-long-password-1")
    staff_force_login(other_patient, "stranger@example.com")
    for client in (other_patient, cancer_client, signed_out):
        for path in (f"/opinions/{assigned_case.public_id}/pdf/v1", _url(assigned_case, "opinion/pdf/v1")):
            response = client.get(path)
            assert response.status_code in (302, 403, 404)
            if response.status_code == 302:
                assert "/accounts/login/" in response["Location"]
    with schema_context(neuro.schema_name):
        assert not OpinionAddendum.objects.exists()
        # Four refusals here; the other institution's attempt is in its own schema's log.
        assert AuditEvent.objects.filter(action="opinion.addendum", allowed=False).count() == 4


def test_it_signs_an_addendum_without_the_password_right_after_signing_in(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")  # signed in (password and code) just now
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    reviewer.post(_url(assigned_case, "opinion/sign"), {})
    page = reviewer.get(_url(assigned_case, "")).content.decode()
    assert 'data-testid="addendum-no-secret"' in page and 'id="id_addendum_secret"' not in page
    reviewer.post(_url(assigned_case, "opinion/addenda"), {"text": ADDENDUM})
    with schema_context(neuro.schema_name):
        assert OpinionAddendum.objects.filter(opinion__case=assigned_case).count() == 1


def test_it_asks_for_the_password_for_an_addendum_once_the_sign_in_is_not_recent(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    from django.test import override_settings

    from review.addenda import ADDENDUM_PROOF_NEEDED_MESSAGE

    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    with override_settings(ACCOUNT_REAUTHENTICATION_TIMEOUT=0):
        assert 'id="id_addendum_secret"' in reviewer.get(_url(assigned_case, "")).content.decode()
        url = _url(assigned_case, "opinion/addenda")
        page = reviewer.post(url, {"text": ADDENDUM}, follow=True).content.decode()
        assert escape(ADDENDUM_PROOF_NEEDED_MESSAGE) in page
        with schema_context(neuro.schema_name):
            assert not OpinionAddendum.objects.exists()
        reviewer.post(url, {"text": ADDENDUM, "secret": DEMO_PASSWORD})
    with schema_context(neuro.schema_name):
        assert OpinionAddendum.objects.filter(opinion__case=assigned_case).count() == 1
