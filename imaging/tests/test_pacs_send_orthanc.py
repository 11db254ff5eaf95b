"""A real PACS receives what staff send: Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``)
takes a case's study by C-STORE on its DICOM port and by STOW-RS on its DICOMweb root; the
images arrive byte for byte, or de-identified when asked."""

from __future__ import annotations

import io
import urllib.request

import pytest
from django.test import Client
from django_tenants.utils import schema_context
from pydicom import dcmread

from imaging.models import Instance, PacsDestination, PacsSend
from imaging.pacs.sends import pacs_send_deliver
from imaging.tests.test_pacs_send import dataset_bytes
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.dicomweb_cases import case_with_study, demo_study
from tests.peers.orthanc import Orthanc, orthanc_running
from tests.staff import staff_force_login

pytestmark = [pytest.mark.slow]
HOST = "neuro.localhost"


def _orthanc_files(orthanc: Orthanc) -> dict[str, bytes]:
    files = {}
    for instance_id in orthanc.get("/instances"):
        with urllib.request.urlopen(orthanc.url(f"/instances/{instance_id}/file"), timeout=60) as response:
            data = response.read()
        files[str(dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)] = data
    return files


def _elements(data: bytes) -> list[tuple[int, object]]:
    """Every element's tag and value (pixel data as bytes), whatever VR it was written with."""
    ds = dcmread(io.BytesIO(data))
    return [(int(element.tag), element.value) for element in ds]


def _send_all(client: Client, case: Case, data: dict[str, str]) -> list[PacsSend]:
    response = client.post("/settings/pacs/", data)
    assert response.status_code == 302, response.content.decode()[:300]
    with schema_context("neuro"):
        destination = PacsDestination.objects.get(name=data["name"])
    form = {"destination": str(destination.public_id)}
    if data.get("deidentified"):
        form["deidentified"] = "on"
    assert client.post(f"/workspace/pacs/{case.public_id}/send", form).status_code == 302
    with schema_context("neuro"):
        sends = []
        for send_id in PacsSend.objects.filter(case=case, destination=destination).values_list(
            "pk", flat=True
        ):
            sends.append(pacs_send_deliver(send_id=send_id))
        return [send for send in sends if send is not None]


def _originals(case: Case) -> dict[str, bytes]:
    with schema_context("neuro"):
        storage = tenant_storage("neuro")
        return {
            i.sop_instance_uid: storage.read_bytes(i.storage_key)
            for i in Instance.objects.filter(series__study__case=case)
        }


@pytest.fixture
def client(neuro: Institution, monkeypatch: pytest.MonkeyPatch) -> Client:
    client = Client(HTTP_HOST=HOST)
    staff_force_login(client, "admin@neuro.example.com")
    return client


def test_orthanc_receives_a_study_by_c_store_and_by_stow_byte_identical(client: Client) -> None:
    _, series = demo_study(ct_slices=3)
    # Every series but the video clip (Orthanc takes it, but nothing else here is about video).
    series = [group for group in series if group.description != "Video clip"]
    case = case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=series)
    originals = _originals(case)
    with orthanc_running(aet="ORTHANC") as orthanc:
        [send] = _send_all(
            client,
            case,
            {
                "name": "Orthanc DIMSE",
                "kind": "dimse",
                "called_ae": "ORTHANC",
                "host": "127.0.0.1",
                "port": str(orthanc.dicom_port),
            },
        )
        assert send.status == PacsSend.Status.SENT and send.instances_sent == len(originals)
        received = _orthanc_files(orthanc)
        assert set(received) == set(originals)
        # Orthanc writes what it receives by C-STORE through dcmtk (it fixes, e.g., an OW that
        # should be OB), so its files are compared element by element; storescp's +B files
        # show the bytes on the wire are ours (test_pacs_send.py).
        for uid, data in originals.items():
            assert _elements(received[uid]) == _elements(data), uid
    with orthanc_running(aet="ORTHANC") as orthanc:
        [send] = _send_all(
            client,
            case,
            {
                "name": "Orthanc DICOMweb",
                "kind": "dicomweb",
                "stow_url": orthanc.url("/dicom-web"),
                "auth": "none",
            },
        )
        assert send.status == PacsSend.Status.SENT, send.error_message
        received = _orthanc_files(orthanc)
        assert set(received) == set(originals)
        for uid, data in originals.items():
            assert dataset_bytes(received[uid]) == dataset_bytes(data), uid
    page = client.get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert page.count(f"Sent: {len(originals)} images") == 2


def test_orthanc_receives_a_deidentified_copy_by_stow(client: Client) -> None:
    _, series = demo_study(ct_slices=2)
    series = [group for group in series if group.description == "CT head axial"]
    case = case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=series)
    originals = _originals(case)
    with orthanc_running(aet="ORTHANC") as orthanc:
        [send] = _send_all(
            client,
            case,
            {
                "name": "Teaching PACS",
                "kind": "dicomweb",
                "stow_url": orthanc.url("/dicom-web"),
                "auth": "none",
                "deidentified": "on",
            },
        )
        assert send.status == PacsSend.Status.SENT and send.instances_sent == 2
        received = _orthanc_files(orthanc)
    assert not set(received) & set(originals)  # new UIDs
    for data in received.values():
        ds = dcmread(io.BytesIO(data))
        assert str(ds.PatientName) == "" and ds.PatientID == send.deid_pseudonym
        assert ds.PatientIdentityRemoved == "YES"
        assert "PatientBirthDate" not in ds or not ds.PatientBirthDate
        assert ds.StudyInstanceUID != series[0].datasets[0].StudyInstanceUID
    assert len({dcmread(io.BytesIO(d)).StudyInstanceUID for d in received.values()}) == 1
