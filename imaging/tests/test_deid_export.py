"""De-identified export (PS3.15 basic profile): walk every element of every exported file and
find nothing that identifies the patient; UIDs replaced but still linked within the export."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from django.test import Client
from django_tenants.utils import schema_context
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from audit.models import AuditEvent
from imaging.deid.profile import action_for
from imaging.models import Instance
from intake.models import Case
from tenants.models import Institution
from tests.dicomweb_cases import SeriesFiles, case_with_study, ct_stack
from tests.staff import staff_force_login

HOST = "neuro.localhost"
SECRETS = [
    "Alvarez",
    "Roberto",
    "MRN-778812",
    "19610304",
    "ACC-99812",
    "Lakeside General",
    "Dr Who",
    "Oak Street",
]


def _identified(datasets: list[Dataset]) -> list[Dataset]:
    for ds in datasets:
        ds.PatientName = "Alvarez^Roberto^Luis"
        ds.PatientID = "MRN-778812"
        ds.PatientBirthDate = "19610304"
        ds.AccessionNumber = "ACC-99812"
        ds.InstitutionName = "Lakeside General"
        ds.InstitutionAddress = "12 Oak Street"
        ds.ReferringPhysicianName = "Dr Who"
        ds.OtherPatientIDs = "MRN-778812"
        ds.StudyDescription = "Head CT for Alvarez"
        ds.SeriesDescription = "Axial"
        request = Dataset()
        request.AccessionNumber = "ACC-99812"
        request.RequestedProcedureID = "MRN-778812"
        ds.RequestAttributesSequence = Sequence([request])
        block = ds.private_block(0x0011, "HOSPITAL PRIVATE", create=True)
        block.add_new(0x01, "LO", "Alvarez Roberto")
        ds.add_new(0x60003000, "OW", b"\x00" * 8)  # overlay data
    # The second slice points at the first, as derived images do.
    reference = Dataset()
    reference.ReferencedSOPClassUID = datasets[0].SOPClassUID
    reference.ReferencedSOPInstanceUID = datasets[0].SOPInstanceUID
    datasets[1].ReferencedImageSequence = Sequence([reference])
    return datasets


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    from tests.dicomweb_cases import _relabel

    study_uid, series_uid = generate_uid(), generate_uid()
    ct = ct_stack(3)
    for number, ds in enumerate(ct, start=1):
        _relabel(ds, study_uid=study_uid, series_uid=series_uid, series_number=1, number=number)
    ct = _identified(ct)
    ultrasound = dcmread(str(get_testdata_file("US1_UNCR.dcm")))
    _relabel(
        ultrasound, study_uid=ct[0].StudyInstanceUID, series_uid="1.2.3.4.5.6", series_number=9, number=1
    )
    yield case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=[SeriesFiles("CT", ct), SeriesFiles("US", [ultrasound])],
    )


def _export(email: str, case: Case, **options: str) -> object:
    client = Client(HTTP_HOST=HOST)
    staff_force_login(client, email)
    return client.post(f"/workspace/deidentified/{case.public_id}.zip", options)


def _files(response: object) -> list[Dataset]:
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return [
            dcmread(io.BytesIO(archive.read(name))) for name in archive.namelist() if name.endswith(".dcm")
        ]


def _every_value(ds: Dataset) -> Iterator[tuple[object, object]]:
    for element in ds.iterall():
        yield element.tag, element.value
    for element in ds.file_meta:
        yield element.tag, element.value


def test_it_leaves_nothing_that_identifies_the_patient(case: Case) -> None:
    response = _export("coordinator@neuro.example.com", case)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response["Content-Disposition"] == 'attachment; filename="deidentified-images.zip"'  # type: ignore[index]
    files = _files(response)
    assert len(files) == 3  # the ultrasound may show the name in its pixels: left out
    with schema_context("neuro"):
        originals = set(
            Instance.objects.filter(series__study__case=case).values_list("sop_instance_uid", flat=True)
        )
        study_uid = case.studies.get().study_instance_uid
    for ds in files:
        for tag, value in _every_value(ds):
            text = str(value)
            assert not any(secret.lower() in text.lower() for secret in SECRETS), (tag, text)
            assert not any(uid in text for uid in (*originals, study_uid)), tag
            assert not getattr(tag, "is_private", False)
            assert not (0x6000 <= tag.group <= 0x60FF), tag  # type: ignore[attr-defined]
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.StudyDate in ("", "19000101") and "StudyDescription" not in ds
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        for element in ds.iterall():
            action = action_for(element.tag)
            if action == "X":
                raise AssertionError(f"{element.tag} should have been removed")
    # One new UID per original: the study and the reference between slices still hold.
    assert len({ds.StudyInstanceUID for ds in files}) == 1
    assert len({ds.PatientID for ds in files}) == 1 and files[0].PatientID.startswith("SR-DEID-")
    by_uid = {ds.SOPInstanceUID for ds in files}
    referencing = [ds for ds in files if "ReferencedImageSequence" in ds]
    assert referencing and referencing[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID in by_uid


def test_it_keeps_dates_and_clean_descriptions_when_asked(case: Case) -> None:
    files = _files(_export("coordinator@neuro.example.com", case, retain_dates="on", clean_descriptors="on"))
    assert {ds.StudyDate for ds in files} == {"20240115"}
    assert {ds.SeriesDescription for ds in files} == {"Axial"}  # names no one: kept
    assert all("StudyDescription" not in ds for ds in files)  # "Head CT for Alvarez": removed
    assert {item.CodeValue for item in files[0].DeidentificationMethodCodeSequence} == {
        "113100",
        "113106",
        "113105",
    }
    assert files[0].LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_it_gives_a_fresh_set_of_uids_to_each_export(case: Case) -> None:
    first = _files(_export("coordinator@neuro.example.com", case))
    second = _files(_export("coordinator@neuro.example.com", case))
    assert first[0].StudyInstanceUID != second[0].StudyInstanceUID


def test_it_refuses_patients_outsiders_and_audits(case: Case) -> None:
    assert _export("patient@neuro.example.com", case).status_code == 403  # type: ignore[attr-defined]
    anonymous = Client(HTTP_HOST=HOST).post(f"/workspace/deidentified/{case.public_id}.zip")
    assert anonymous.status_code == 302
    other = Client(HTTP_HOST="cancer.localhost")
    staff_force_login(other, "coordinator@cancer.example.com")
    assert other.post(f"/workspace/deidentified/{case.public_id}.zip").status_code == 404
    _export("coordinator@neuro.example.com", case)
    with schema_context("neuro"):
        events = AuditEvent.objects.filter(case_id=case.pk, action="case.deidentified_export")
        assert [e.allowed for e in events.order_by("id")] == [False, True]
        assert events.get(allowed=True).detail["images"] == 3
