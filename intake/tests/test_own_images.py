"""The patient's own images: a link to the viewer, and the original files as a streamed zip;
outsiders are refused and every download is audited."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from audit.models import AuditEvent
from imaging.ingest.pipeline import upload_ingest_run
from imaging.models import Study
from imaging.tests.fixtures.ingest import dicom_renamed, upload_make
from intake.models import Case
from intake.tests.test_wizard import patient_user, ready_case, signed_in
from tenants.models import Institution


@pytest.fixture
def patient(neuro: Institution) -> User:
    return patient_user(neuro)


@pytest.fixture
def client(neuro: Institution, patient: User) -> Client:
    return signed_in(neuro, patient)


@pytest.fixture
def files() -> dict[str, bytes]:
    return {"CT": dicom_renamed("CT_small.dcm"), "MR": dicom_renamed("MR_small.dcm")}


@pytest.fixture
def case(neuro: Institution, patient: User, files: dict[str, bytes]) -> Iterator[Case]:
    case = ready_case(neuro, patient)
    with tenant_context(neuro):
        case.studies.all().delete()
        for name, data in files.items():
            upload_ingest_run(upload_id=upload_make(case, data, path=f"DICOM/{name}").pk)
        Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED, number="NNI-000042")
        case.refresh_from_db()
    yield case


def _zip(response: object) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))  # type: ignore[attr-defined]


def test_the_patient_downloads_their_original_files(
    neuro: Institution, client: Client, case: Case, files: dict[str, bytes]
) -> None:
    response = client.get(f"/cases/{case.public_id}/images.zip")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="images-NNI-000042.zip"'
    archive = _zip(response)
    names = archive.namelist()
    assert len(names) == 2 and all(name.endswith("/IM00001.dcm") for name in names)
    # The originals, byte for byte; no one's name in the zip's paths.
    assert sorted(archive.read(name) for name in names) == sorted(files.values())
    assert not any("Alex" in name or "Sample" in name for name in names)
    with tenant_context(neuro):
        assert AuditEvent.objects.filter(case_id=case.pk, action="images.download").count() == 1


def test_a_left_out_study_is_not_in_the_download(neuro: Institution, client: Client, case: Case) -> None:
    with tenant_context(neuro):
        Study.objects.filter(case=case, modalities="MR").update(excluded_at="2026-01-01T00:00:00Z")
    names = _zip(client.get(f"/cases/{case.public_id}/images.zip")).namelist()
    assert len(names) == 1 and "_CT_" in names[0]


def test_the_status_page_offers_the_viewer_and_the_download(client: Client, case: Case) -> None:
    page = client.get(f"/cases/{case.public_id}/").content.decode()
    assert f"/workspace/viewer/{case.public_id}/" in page
    assert f"/cases/{case.public_id}/images.zip" in page
    assert client.get(f"/workspace/viewer/{case.public_id}/").status_code == 200


def test_outsiders_get_neither_images_nor_viewer(
    neuro: Institution, cancer: Institution, case: Case, neuro_client: Client
) -> None:
    other = signed_in(neuro, patient_user(neuro))
    foreign = signed_in(cancer, patient_user(cancer))
    for url in (f"/cases/{case.public_id}/images.zip", f"/workspace/viewer/{case.public_id}/"):
        assert other.get(url).status_code == 404, url
        assert foreign.get(url).status_code == 404, url
        assert "/accounts/login/" in neuro_client.get(url)["Location"], url
    with tenant_context(neuro):
        assert not AuditEvent.objects.filter(case_id=case.pk, action="images.download").exists()
