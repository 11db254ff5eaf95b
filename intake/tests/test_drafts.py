"""Storage a patient can take is bounded per person, not per draft: no files before consent,
one quota across all of a person's cases, a cap on unsent drafts, and drafts abandoned for 60
days deleted with their files after a warning email."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from imaging.models import Upload
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.drafts import DRAFT_RETENTION, DRAFT_WARNING, MAX_OPEN_DRAFTS, TOO_MANY_DRAFTS
from intake.models import Case
from intake.services import case_start
from intake.tasks import drafts_purge_all
from intake.tus import messages
from intake.tus import services as tus_services
from intake.tus.protocol import encode_metadata
from payments.models import Payment
from storage.tenant import tenant_storage
from tenants.models import Institution
from tenants.schema import activate_institution

TUS: dict[str, Any] = {"HTTP_TUS_RESUMABLE": "1.0.0"}
PATIENT = "patient@neuro.example.com"


@pytest.fixture
def patient(neuro: Institution) -> User:
    activate_institution(neuro)
    return User.objects.get(email=PATIENT)


@pytest.fixture
def patient_client(neuro_client: Client) -> Client:
    neuro_client.post("/accounts/login/", {"login": PATIENT, "password": DEMO_PASSWORD})
    return neuro_client


def _create(client: Client, case: Case, length: int) -> Any:
    pairs = {"case": str(case.public_id), "kind": "imaging", "filename": "IM000001"}
    return client.post(
        "/intake/tus/", HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=encode_metadata(pairs), **TUS
    )


@pytest.fixture
def cleanup_files(neuro: Institution) -> Iterator[None]:
    yield
    with tenant_context(neuro):
        for prefix in ("uploads", "tus-staging", "dicom", "reports"):
            tenant_storage().delete_prefix(prefix)


def test_no_files_are_taken_before_the_patient_consents(
    patient: User, patient_client: Client, cleanup_files: None
) -> None:
    case = Case.objects.create(owner=patient)
    response = _create(patient_client, case, 100)
    assert response.status_code == 403
    assert response.content.decode() == messages.CONSENT_FIRST
    assert not Upload.objects.filter(case=case).exists()
    Case.objects.filter(pk=case.pk).update(consented_at=timezone.now())
    assert _create(patient_client, case, 100).status_code == 201


def test_one_quota_holds_across_all_of_a_persons_cases(
    patient: User, patient_client: Client, monkeypatch: pytest.MonkeyPatch, cleanup_files: None
) -> None:
    # The demo patient's earlier files do not count here (as if they had expired).
    Upload.objects.filter(case__owner=patient).update(status=Upload.Status.EXPIRED)
    monkeypatch.setattr(tus_services, "PATIENT_QUOTA", 10_000)
    first = Case.objects.create(owner=patient, consented_at=timezone.now())
    second = Case.objects.create(owner=patient, consented_at=timezone.now())
    Upload.objects.create(case=first, owner=patient, length=9_000, storage_key="uploads/x/y")
    # A new case is not a new allowance.
    assert _create(patient_client, second, 900).status_code == 201
    response = _create(patient_client, second, 200)
    assert response.status_code == 413
    assert response.content.decode() == messages.PATIENT_QUOTA_EXCEEDED.format(used="9.7 KB", limit="9.8 KB")
    # Files that failed or expired do not count.
    Upload.objects.filter(case=first).update(status=Upload.Status.FAILED)
    assert _create(patient_client, second, 200).status_code == 201


def test_a_person_keeps_at_most_a_few_unsent_requests(patient: User, patient_client: Client) -> None:
    Case.objects.filter(owner=patient, status=Case.Status.DRAFT).delete()
    for _ in range(MAX_OPEN_DRAFTS):
        assert patient_client.post("/cases/new/").status_code == 302
    response = patient_client.post("/cases/new/", follow=True)
    assert TOO_MANY_DRAFTS.format(count=MAX_OPEN_DRAFTS) in response.content.decode()
    assert Case.objects.filter(owner=patient, status=Case.Status.DRAFT).count() == MAX_OPEN_DRAFTS


def _age(case: Case, days: int, *, warned_days_ago: int | None = None) -> None:
    now = timezone.now()
    Case.objects.filter(pk=case.pk).update(
        updated=now - timedelta(days=days),
        purge_warned_at=None if warned_days_ago is None else now - timedelta(days=warned_days_ago),
    )
    Upload.objects.filter(case=case).update(created=now - timedelta(days=days))


def _draft_with_a_file(owner: User) -> Case:
    case = case_start(owner=owner)
    Case.objects.filter(pk=case.pk).update(consented_at=timezone.now())
    key = f"uploads/{case.public_id}/file"
    tenant_storage().save(key, io.BytesIO(b"DICM" * 100), 400)
    Upload.objects.create(case=case, owner=owner, length=400, storage_key=key, status=Upload.Status.RECEIVED)
    return case


def test_abandoned_drafts_are_announced_then_deleted_with_their_files(
    neuro: Institution, patient: User, cleanup_files: None
) -> None:
    Case.objects.filter(owner=patient, status=Case.Status.DRAFT).delete()
    abandoned = _draft_with_a_file(patient)
    recent = _draft_with_a_file(patient)
    sent = _draft_with_a_file(patient)
    Case.objects.filter(pk=sent.pk).update(status=Case.Status.SUBMITTED)
    for case in (abandoned, sent):
        _age(case, (DRAFT_RETENTION - DRAFT_WARNING).days + 1)

    drafts_purge_all()
    [warning] = mail.outbox
    assert warning.to == [PATIENT]
    assert "will be deleted in 7 days" in warning.subject
    assert f"/cases/{abandoned.public_id}/" in warning.body
    assert Case.objects.get(pk=abandoned.pk).purge_warned_at is not None
    # A second run the same day sends nothing and deletes nothing.
    drafts_purge_all()
    assert len(mail.outbox) == 1
    assert Case.objects.filter(pk=abandoned.pk).exists()

    # A week later, still untouched: gone, with its files and its frozen price.
    _age(abandoned, DRAFT_RETENTION.days + 1, warned_days_ago=DRAFT_WARNING.days + 1)
    _age(sent, DRAFT_RETENTION.days + 1)
    drafts_purge_all()
    activate_institution(neuro)
    assert not Case.objects.filter(pk=abandoned.pk).exists()
    assert not Upload.objects.filter(case_id=abandoned.pk).exists()
    assert not Payment.objects.filter(case_id=abandoned.pk).exists()
    assert not tenant_storage().exists(f"uploads/{abandoned.public_id}/file")
    # Others are untouched: a recent draft, and anything the patient sent.
    assert Case.objects.filter(pk__in=(recent.pk, sent.pk)).count() == 2
    assert tenant_storage().exists(f"uploads/{recent.public_id}/file")


def test_a_draft_opened_after_the_warning_is_kept(
    neuro: Institution, patient: User, patient_client: Client, cleanup_files: None
) -> None:
    Case.objects.filter(owner=patient, status=Case.Status.DRAFT).delete()
    case = _draft_with_a_file(patient)
    _age(case, DRAFT_RETENTION.days + 1, warned_days_ago=DRAFT_WARNING.days + 1)
    assert patient_client.get(f"/cases/{case.public_id}/question/").status_code == 200
    drafts_purge_all()
    activate_institution(neuro)
    case.refresh_from_db()
    assert case.purge_warned_at is None
    assert tenant_storage().exists(f"uploads/{case.public_id}/file")


def test_a_draft_with_money_moved_is_never_deleted(
    neuro: Institution, patient: User, cleanup_files: None
) -> None:
    Case.objects.filter(owner=patient, status=Case.Status.DRAFT).delete()
    case = _draft_with_a_file(patient)
    Payment.objects.filter(case=case).update(status=Payment.Status.PROCESSING)
    _age(case, DRAFT_RETENTION.days + 1, warned_days_ago=DRAFT_WARNING.days + 1)
    drafts_purge_all()
    activate_institution(neuro)
    assert Case.objects.filter(pk=case.pk).exists()
    assert tenant_storage().exists(f"uploads/{case.public_id}/file")
