"""Real DICOM studies for the DICOMweb and viewer tests and the viewer benchmark.

Files come from pydicom's test data (real scanners' images, several compressions); a stack is
made from one real CT slice with new UIDs and a different image per slice, so that scrolling
shows a change. ``case_with_study`` stores the files in the institution's storage and writes the
Case / Study / Series / Instance rows and commits them, so a live server in another process can
serve them; ``case_remove`` undoes all of it.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, generate_uid

from accounts.models import User
from imaging.models import Instance, Series, Study
from intake.models import Case
from storage.tenant import tenant_storage

# A compression the viewer cannot decode (MPEG-2 video): used to check the viewer says so.
UNSUPPORTED_TRANSFER_SYNTAX = "1.2.840.10008.1.2.4.100"


@dataclass(frozen=True)
class SeriesFiles:
    description: str
    datasets: list[Dataset]


def _testdata(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is missing"
    return dcmread(path)


def _relabel(ds: Dataset, *, study_uid: str, series_uid: str, series_number: int, number: int) -> Dataset:
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.InstanceNumber = number
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = "Test^Viewer"
    ds.PatientID = "SR-TEST-1"
    ds.StudyDate = "20240115"
    ds.AccessionNumber = "ACC-VIEW-1"
    ds.StudyID = "SR-7"
    ds.PatientBirthDate = "19610304"
    ds.PatientSex = "M"
    return ds


def ct_stack(count: int, *, size: int = 128) -> list[Dataset]:
    """``count`` CT slices made from one real slice: 128×128 from CT_small.dcm, or 512×512 from
    the first frame of eCT_Supplemental.dcm; each slice is shifted so no two look the same."""
    template = _testdata("CT_small.dcm")
    if size == 512:
        enhanced = _testdata("eCT_Supplemental.dcm")
        pixels = enhanced.pixel_array[0].astype(np.uint16)
        template.Rows = template.Columns = 512
        template.PixelSpacing = [0.388672, 0.388672]
        template.PixelRepresentation = 0
        template.BitsStored = 16
        template.HighBit = 15
        template.WindowCenter, template.WindowWidth = 40, 400
    else:
        pixels = template.pixel_array
    slices = []
    for index in range(count):
        ds = copy.deepcopy(template)
        shifted = np.roll(pixels, shift=index * 3, axis=1)
        ds.PixelData = np.ascontiguousarray(shifted).tobytes()
        ds.SliceLocation = float(index * 5)
        ds.ImagePositionPatient = [-100.0, -100.0, float(index * 5)]
        ds.SeriesDescription = "CT head axial"
        slices.append(ds)
    return slices


def _unsupported() -> Dataset:
    ds = _testdata("MR_small.dcm")
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(64)])  # an MPEG-2 sequence header
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = UID(UNSUPPORTED_TRANSFER_SYNTAX)
    ds.SeriesDescription = "Video clip"
    return ds


def demo_study(*, ct_slices: int = 12) -> tuple[str, list[SeriesFiles]]:
    """A multi-series study: a CT stack (uncompressed) and one series per compression the viewer
    must decode (JPEG 2000, RLE, JPEG baseline, JPEG lossless), plus one it cannot."""
    named = [
        ("CT head axial", ct_stack(ct_slices)),
        ("MR JPEG 2000", [_testdata("MR_small_jp2klossless.dcm")]),
        ("Colour RLE", [_testdata("SC_rgb_rle.dcm")]),
        ("Colour JPEG baseline", [_testdata("SC_rgb_jpeg_dcmtk.dcm")]),
        ("NM JPEG lossless", [_testdata("JPEG-LL.dcm")]),
        ("Video clip", [_unsupported()]),
    ]
    study_uid = generate_uid()
    series = []
    for number, (description, datasets) in enumerate(named, start=1):
        series_uid = generate_uid()
        for position, ds in enumerate(datasets, start=1):
            _relabel(ds, study_uid=study_uid, series_uid=series_uid, series_number=number, number=position)
            ds.SeriesDescription = description
        series.append(SeriesFiles(description, datasets))
    return study_uid, series


def _encoded(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def case_with_study(
    *,
    schema_name: str,
    owner_email: str,
    series: Iterable[SeriesFiles],
    status: str = Case.Status.ASSIGNED,
    reviewer_email: str | None = None,
) -> Case:
    """A case owned by ``owner_email`` holding ``series`` (one study per StudyInstanceUID),
    assigned to ``reviewer_email`` if given, stored in ``schema_name`` (committed unless the
    caller holds a transaction, as a ``db`` test does)."""
    with schema_context(schema_name), transaction.atomic():
        owner = User.objects.get(email=owner_email)
        case = Case.objects.create(
            owner=owner,
            status=status,
            number=f"TST-{uuid.uuid4().hex[:10].upper()}",
            submitted_at=timezone.now(),
            question="Is the lesion growing?",
        )
        if reviewer_email:
            from review.models import CaseAssignment

            CaseAssignment.objects.create(
                case=case, reviewer=User.objects.get(email=reviewer_email), assigned_at=timezone.now()
            )
        storage = tenant_storage(schema_name)
        studies: dict[str, Study] = {}
        for group in series:
            first = group.datasets[0]
            study = studies.get(first.StudyInstanceUID)
            if study is None:
                study = studies[first.StudyInstanceUID] = Study.objects.create(
                    case=case,
                    study_instance_uid=first.StudyInstanceUID,
                    study_date=dt.date(2024, 1, 15),
                    description="Test study",
                    accession_number=str(first.get("AccessionNumber", "")),
                    patient_name_in_files=str(first.get("PatientName", "")),
                    patient_id_in_files=str(first.get("PatientID", "")),
                    patient_birth_date_in_files=str(first.get("PatientBirthDate", "")),
                    patient_sex_in_files=str(first.get("PatientSex", "")),
                    study_id=str(first.get("StudyID", "")),
                )
            row = Series.objects.create(
                study=study,
                series_instance_uid=first.SeriesInstanceUID,
                series_number=int(first.SeriesNumber),
                modality=str(first.get("Modality", "OT")),
                description=group.description,
                instance_count=len(group.datasets),
            )
            for ds in group.datasets:
                data = _encoded(ds)
                key = f"cases/{case.public_id}/instances/{uuid.uuid4().hex}.dcm"
                storage.save(key, io.BytesIO(data), len(data))
                Instance.objects.create(
                    series=row,
                    sop_instance_uid=ds.SOPInstanceUID,
                    sop_class_uid=str(ds.SOPClassUID),
                    instance_number=int(ds.InstanceNumber),
                    transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
                    rows=int(ds.Rows),
                    columns=int(ds.Columns),
                    number_of_frames=int(ds.get("NumberOfFrames") or 1),
                    bits_allocated=ds.get("BitsAllocated"),
                    storage_key=key,
                    size=len(data),
                )
        for study in studies.values():
            study.series_count = study.series.count()
            study.instance_count = Instance.objects.filter(series__study=study).count()
            study.modalities = ",".join(sorted(set(study.series.values_list("modality", flat=True))))
            study.save()
    return case


def case_remove(*, schema_name: str, case: Case) -> None:
    """Delete the case, its rows and its stored files. Its audit events stay: the log is
    append-only (the database refuses to delete them) and names the case by id only."""
    with schema_context(schema_name):
        tenant_storage(schema_name).delete_prefix(f"cases/{case.public_id}")
        Case.objects.filter(pk=case.pk).delete()
