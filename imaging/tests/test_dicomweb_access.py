"""Who may read images over DICOMweb: refusals answer like a missing study and are audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django_tenants.utils import schema_context
from pydicom.uid import generate_uid

from accounts.models import User
from audit.models import AuditEvent
from imaging.dicomweb.access import NOT_FOUND, SIGN_IN_REQUIRED
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from tenants.models import Institution
from tests.dicomweb_cases import SeriesFiles, case_with_study, ct_stack, demo_study
from tests.staff import staff_force_login

HOST = "neuro.localhost"


@pytest.fixture
def study(neuro: Institution) -> Iterator[tuple[Case, str]]:
    study_uid, series = demo_study(ct_slices=3)
    case = case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=series,
        reviewer_email="reviewer1@neuro.example.com",
    )
    yield case, study_uid


def _client(email: str | None = None, host: str = HOST, schema: str = "neuro") -> Client:
    client = Client(HTTP_HOST=host)
    if email:
        staff_force_login(client, email)
    return client


def _events(case: Case, action: str) -> list[AuditEvent]:
    with schema_context("neuro"):
        return list(AuditEvent.objects.filter(case_id=case.pk, action=action))


def _another_patient() -> str:
    email = "other-patient@example.com"
    with schema_context("neuro"):
        if not User.objects.filter(email=email).exists():
            user = User.objects.create_user(email, DEMO_PASSWORD)
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return email


def test_it_lets_the_assigned_reviewer_find_and_read_the_study(study: tuple[Case, str]) -> None:
    case, study_uid = study
    client = _client("reviewer1@neuro.example.com")
    found = client.get("/dicomweb/studies", {"StudyInstanceUID": study_uid})
    assert found.status_code == 200
    assert found["Content-Type"] == "application/dicom+json"
    assert [s["0020000D"]["Value"][0] for s in found.json()] == [study_uid]
    assert found.json()[0]["00201206"]["Value"] == [6]
    metadata = client.get(f"/dicomweb/studies/{study_uid}/metadata")
    assert metadata.status_code == 200
    assert len(b"".join(metadata.streaming_content)) > 0  # type: ignore[attr-defined]
    assert _events(case, "dicomweb.metadata")[0].allowed


def test_it_lets_the_patient_see_their_own_images(study: tuple[Case, str]) -> None:
    case, study_uid = study
    client = _client("patient@neuro.example.com")
    response = client.get(f"/dicomweb/cases/{case.public_id}/studies/{study_uid}/series")
    assert response.status_code == 200
    assert len(response.json()) == 6


def test_it_asks_a_logged_out_visitor_to_sign_in_and_audits_the_attempt(study: tuple[Case, str]) -> None:
    case, study_uid = study
    response = _client().get(f"/dicomweb/cases/{case.public_id}/studies/{study_uid}/metadata")
    assert response.status_code == 401
    assert response.content.decode() == SIGN_IN_REQUIRED
    assert [event.allowed for event in _events(case, "dicomweb.metadata")] == [False]
    assert _client().get("/dicomweb/studies").status_code == 401


def test_it_refuses_another_patient_as_if_the_study_did_not_exist(study: tuple[Case, str]) -> None:
    case, study_uid = study
    client = _client(_another_patient())
    response = client.get(f"/dicomweb/studies/{study_uid}/metadata")
    assert response.status_code == 404
    assert response.content.decode() == NOT_FOUND
    assert client.get("/dicomweb/studies").json() == []
    assert client.get(f"/dicomweb/cases/{case.public_id}/studies").status_code == 404
    refused = _events(case, "dicomweb.metadata") + _events(case, "dicomweb.search_studies")
    assert refused and not any(event.allowed for event in refused)


def test_it_refuses_a_reviewer_the_case_is_not_assigned_to(study: tuple[Case, str]) -> None:
    case, study_uid = study
    client = _client("reviewer2@neuro.example.com")
    assert client.get(f"/dicomweb/studies/{study_uid}/series").status_code == 404
    assert not _events(case, "dicomweb.search_series")[0].allowed


def test_it_refuses_a_user_of_another_institution(study: tuple[Case, str], cancer: Institution) -> None:
    case, study_uid = study
    client = _client("coordinator@cancer.example.com", host="cancer.localhost", schema="cancer")
    assert client.get(f"/dicomweb/studies/{study_uid}/metadata").status_code == 404
    assert client.get(f"/dicomweb/cases/{case.public_id}/studies/{study_uid}/metadata").status_code == 404
    assert client.get("/dicomweb/studies", {"StudyInstanceUID": study_uid}).json() == []
    # A neuro account does not exist on the cancer domain at all.
    outsider = Client(HTTP_HOST="cancer.localhost")
    outsider.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": DEMO_PASSWORD})
    assert outsider.get(f"/dicomweb/studies/{study_uid}/metadata").status_code == 401


def test_it_refuses_a_uid_of_another_case_under_a_case_url(study: tuple[Case, str]) -> None:
    case, _ = study
    other_uid, other_series = demo_study(ct_slices=1)
    other = case_with_study(schema_name="neuro", owner_email=_another_patient(), series=other_series[:1])
    client = _client("coordinator@neuro.example.com")
    assert client.get(f"/dicomweb/cases/{other.public_id}/studies/{other_uid}/metadata").status_code == 200
    response = client.get(f"/dicomweb/cases/{case.public_id}/studies/{other_uid}/metadata")
    assert response.status_code == 404
    assert not _events(case, "dicomweb.metadata")[0].allowed


def test_it_serves_each_case_its_own_copy_of_a_shared_study_uid(study: tuple[Case, str]) -> None:
    case, study_uid = study
    copy = ct_stack(2)
    for number, ds in enumerate(copy, start=1):
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = number
    second = case_with_study(
        schema_name="neuro", owner_email=_another_patient(), series=[SeriesFiles("copy", copy)]
    )
    client = _client("coordinator@neuro.example.com")
    first_series = client.get(f"/dicomweb/cases/{case.public_id}/studies/{study_uid}/series").json()
    second_series = client.get(f"/dicomweb/cases/{second.public_id}/studies/{study_uid}/series").json()
    assert len(first_series) == 6
    assert [s["0020000E"]["Value"][0] for s in second_series] == ["1.2.826.0.1.3680043.8.498.1"]
    # At the root the UID is listed once.
    assert len(client.get("/dicomweb/studies", {"StudyInstanceUID": study_uid}).json()) == 1
