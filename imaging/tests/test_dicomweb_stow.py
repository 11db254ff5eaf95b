"""STOW-RS into a case (PS3.18 §10.5): a referring clinic's system, holding an integration key
with the ``dicomweb.write`` permission, stores instances into a case named by its number; each
part is checked on its own and the answer says which were stored and why the others were not."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django_tenants.utils import schema_context
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from accounts.models import User
from audit.models import AuditEvent
from imaging.dicomweb import stow as stow_messages
from imaging.dicomweb import stow_views
from imaging.integrations.credentials import credential_create
from imaging.models import Instance, IntegrationCredential, Upload
from intake.models import Case
from tenants.models import Institution
from tests.dicomweb_cases import _relabel, ct_stack
from tests.staff import staff_force_login

HOST = "neuro.localhost"
WRITE = IntegrationCredential.Scope.DICOMWEB_WRITE
READ = IntegrationCredential.Scope.DICOMWEB_READ


def key(slug: str, scopes: list[str]) -> str:
    with schema_context(slug):
        request = RequestFactory().post("/", HTTP_HOST=f"{slug}.localhost")
        request.user = User.objects.get(email=f"admin@{slug}.example.com")
        return credential_create(request=request, name="Referring clinic", scopes=scopes)[1]


def instances(count: int, study_uid: str | None = None) -> list[Dataset]:
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    return [
        _relabel(ds, study_uid=study_uid, series_uid=series_uid, series_number=1, number=n)
        for n, ds in enumerate(ct_stack(count), start=1)
    ]


def part10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    body = b"preamble to ignore"
    for content_type, data in parts:
        body += f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + data
    body += f"\r\n--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary="{boundary}"'


def stow(
    client: Client, path: str, parts: list[tuple[str, bytes]], token: str | None, **headers: Any
) -> tuple[int, dict[str, Any], dict[str, str]]:
    body, content_type = multipart(parts)
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    response = client.post(
        path, body, content_type=content_type, HTTP_ACCEPT="application/dicom+json", **headers
    )
    answer = (
        json.loads(response.content) if response["Content-Type"].startswith("application/dicom+json") else {}
    )
    return response.status_code, answer, dict(response.headers)


def sop_uids(answer: dict[str, Any], sequence: str) -> list[str]:
    return [item["00081155"]["Value"][0] for item in answer.get(sequence, {}).get("Value", [])]


@pytest.fixture
def case(make_case: Callable[..., Case]) -> Case:
    return make_case(with_files=False)


def test_it_stores_instances_into_the_case_named_by_its_number(neuro: Institution, case: Case) -> None:
    token = key("neuro", [WRITE])
    datasets = instances(3)
    status, answer, _ = stow(
        Client(HTTP_HOST=HOST),
        f"/dicomweb/studies?case={case.number}",
        [("application/dicom", part10(ds)) for ds in datasets],
        token,
    )
    assert status == 200
    assert sorted(sop_uids(answer, "00081199")) == sorted(ds.SOPInstanceUID for ds in datasets)
    assert "00081198" not in answer
    with schema_context("neuro"):
        stored = Instance.objects.filter(series__study__case=case)
        assert sorted(stored.values_list("sop_instance_uid", flat=True)) == sorted(
            ds.SOPInstanceUID for ds in datasets
        )
        assert case.studies.get().instance_count == 3
        assert set(Upload.objects.filter(case=case).values_list("status", flat=True)) == {Upload.Status.DONE}
        event = AuditEvent.objects.get(case=case, action="dicomweb.stow")
        assert event.allowed and event.detail["stored"] == 3 and event.detail["credential_name"]


def test_it_says_why_each_refused_part_was_refused(neuro: Institution, case: Case) -> None:
    token = key("neuro", [WRITE])
    [good] = instances(1)
    [elsewhere] = instances(1)  # another study than the one in the address
    no_uid = instances(1)[0]
    del no_uid.SOPInstanceUID
    status, answer, headers = stow(
        Client(HTTP_HOST=HOST),
        f"/dicomweb/studies/{good.StudyInstanceUID}",
        [
            ("application/dicom", part10(good)),
            ("application/dicom", part10(elsewhere)),
            ("application/dicom", b"this is not a DICOM file at all"),
            ("application/pdf", b"%PDF-1.4"),
        ],
        token,
        HTTP_X_SECONDREAD_CASE=str(case.number),
    )
    assert status == 202
    assert sop_uids(answer, "00081199") == [good.SOPInstanceUID]
    failed = answer["00081198"]["Value"]
    assert [item["00081197"]["Value"][0] for item in failed] == [
        stow_messages.DOES_NOT_MATCH,
        stow_messages.CANNOT_UNDERSTAND,
        stow_messages.CANNOT_UNDERSTAND,
    ]
    assert failed[0]["00081155"]["Value"] == [elsewhere.SOPInstanceUID]
    for message in (
        stow_messages.PART_OTHER_STUDY,
        stow_messages.PART_UNREADABLE,
        stow_messages.PART_NOT_DICOM,
    ):
        assert message in headers["Warning"]
    with schema_context("neuro"):
        assert list(
            Instance.objects.filter(series__study__case=case).values_list("sop_instance_uid", flat=True)
        ) == [good.SOPInstanceUID]


def test_it_answers_409_when_nothing_could_be_stored(neuro: Institution, case: Case) -> None:
    token = key("neuro", [WRITE])
    status, answer, _ = stow(
        Client(HTTP_HOST=HOST),
        f"/dicomweb/studies?case={case.number}",
        [("application/dicom", b"junk")],
        token,
    )
    assert status == 409 and "00081199" not in answer and len(answer["00081198"]["Value"]) == 1


def test_it_stores_through_the_case_scoped_address(neuro: Institution, case: Case) -> None:
    token = key("neuro", [WRITE])
    [ds] = instances(1)
    status, _, _ = stow(
        Client(HTTP_HOST=HOST),
        f"/dicomweb/cases/{case.public_id}/studies",
        [("application/dicom", part10(ds))],
        token,
    )
    assert status == 200
    with schema_context("neuro"):
        assert Instance.objects.filter(series__study__case=case, sop_instance_uid=ds.SOPInstanceUID).exists()


def test_it_refuses_malformed_requests_in_words(neuro: Institution, case: Case) -> None:
    token = key("neuro", [WRITE])
    client = Client(HTTP_HOST=HOST)
    auth = f"Bearer {token}"
    wrong_type = client.post(
        f"/dicomweb/studies?case={case.number}",
        b"{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert wrong_type.status_code == 415 and stow_messages.NOT_MULTIPART in wrong_type.content.decode()
    no_case, _, _ = stow(client, "/dicomweb/studies", [("application/dicom", b"x")], token)
    assert no_case == 400
    cut = client.post(
        f"/dicomweb/studies?case={case.number}",
        b"--abc\r\nContent-Type: application/dicom\r\n\r\nDICM...",
        content_type='multipart/related; type="application/dicom"; boundary=abc',
        HTTP_AUTHORIZATION=auth,
    )
    assert cut.status_code == 400 and stow_messages.BAD_BODY in cut.content.decode()
    with schema_context("neuro"):
        assert not Upload.objects.filter(case=case).exists()


def test_outsiders_cannot_store(
    neuro: Institution, cancer: Institution, case: Case, make_case: Callable[..., Case]
) -> None:
    [ds] = instances(1)
    parts = [("application/dicom", part10(ds))]
    path = f"/dicomweb/studies?case={case.number}"
    client = Client(HTTP_HOST=HOST)
    # Logged out, a read-only key, another institution's key, a key sent to the other site.
    assert stow(client, path, parts, None)[0] == 401
    assert stow(client, path, parts, key("neuro", [READ]))[0] == 401
    cancer_key = key("cancer", [WRITE])
    assert stow(client, path, parts, cancer_key)[0] == 401
    assert stow(Client(HTTP_HOST="cancer.localhost"), path, parts, cancer_key)[0] == 404
    # A signed-in coordinator's session is not a key (no cookie-borne writes).
    staff = Client(HTTP_HOST=HOST)
    staff_force_login(staff, "coordinator@neuro.example.com")
    assert stow(staff, path, parts, None)[0] == 401
    # A draft (not yet submitted) case is not reachable with a key.
    draft = make_case(status=Case.Status.DRAFT, with_files=False)
    assert stow(client, f"/dicomweb/studies?case={draft.number}", parts, key("neuro", [WRITE]))[0] == 404
    with schema_context("neuro"):
        assert not Instance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists()
        refused = AuditEvent.objects.filter(action=stow_views.ACTION, allowed=False)
        assert refused.count() >= 4
