"""The demo patient's submitted case: a real multi-series head CT on a CD (with DICOMDIR) and the
radiology report that goes with it, ingested through the real pipeline.

The images are made from real CT pixel data that pydicom ships (a small CT slice, and a head CT
slice from the CQ500 collection kept in its JPEG 2000 encoding), given new UIDs that share one
study and one patient, so the case looks like a disc a patient would bring.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
from django.db import transaction
from django.utils import timezone
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from accounts.models import User
from imaging.ingest.pipeline import upload_ingest_run
from imaging.models import Upload
from intake.models import Case
from intake.selectors import institution_case_prefix
from intake.status import case_number_assign
from storage.tenant import tenant_storage
from tenants.models import Institution

DEMO_QUESTION = "Is the lesion seen on my head CT a tumour, and does it need surgery or can it be watched?"
DEMO_PATIENT_NAME = "Pat Patient"
DEMO_DICOM_NAME = "PATIENT^PAT"
DEMO_BIRTH_DATE = date(1961, 4, 12)
DEMO_STUDY_DATE = date(2025, 3, 14)
DEMO_AXIAL_SLICES = 12


def _demo_patient(slug: str) -> User:
    return User.objects.get(email=f"patient@{slug}.example.com")


def _headers(ds: pydicom.Dataset, *, study_uid: str, accession: str, series_uid: str) -> None:
    ds.PatientName = DEMO_DICOM_NAME
    ds.PatientID = "DEMO0001"
    ds.PatientBirthDate = DEMO_BIRTH_DATE.strftime("%Y%m%d")
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = DEMO_STUDY_DATE.strftime("%Y%m%d")
    ds.SeriesDate = ds.StudyDate
    ds.StudyTime = "093000"
    ds.StudyID = "1"
    ds.AccessionNumber = accession
    ds.StudyDescription = "CT HEAD WITHOUT CONTRAST"
    ds.ReferringPhysicianName = "WELBY^MARCUS"
    ds.BodyPartExamined = "HEAD"
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def demo_study_datasets(*, accession: str) -> list[pydicom.Dataset]:
    """Three series of one head CT: axial slices, a brain-window slab (JPEG 2000), a scout."""
    study_uid = generate_uid()
    datasets: list[pydicom.Dataset] = []
    base = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    pixels = base.pixel_array.astype(np.int16)
    rows, columns = pixels.shape
    yy, xx = np.mgrid[0:rows, 0:columns]
    centre = np.array([rows / 2, columns / 2])
    axial_uid = generate_uid()
    for index in range(DEMO_AXIAL_SLICES):
        ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
        # Each slice is the real slice seen through a disc that shrinks towards the vertex, so
        # scrolling the series moves through a head rather than repeating one picture.
        radius = columns * (0.55 - 0.03 * abs(index - DEMO_AXIAL_SLICES / 3))
        inside = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
        ds.PixelData = np.where(inside, pixels, pixels.min()).astype(pixels.dtype).tobytes()
        _headers(ds, study_uid=study_uid, accession=accession, series_uid=axial_uid)
        ds.SeriesNumber = 2
        ds.SeriesDescription = "AX HEAD 5MM"
        ds.InstanceNumber = index + 1
        ds.SliceLocation = -75.0 + 5.0 * index
        ds.ImagePositionPatient = [-158.135803, -179.035797, ds.SliceLocation]
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        datasets.append(ds)

    brain_uid = generate_uid()
    for index in range(3):
        ds = pydicom.dcmread(str(get_testdata_file("693_J2KI.dcm")))  # stays JPEG 2000 encoded
        _headers(ds, study_uid=study_uid, accession=accession, series_uid=brain_uid)
        ds.SeriesNumber = 3
        ds.SeriesDescription = "AX BRAIN 5MM (JPEG 2000)"
        ds.InstanceNumber = index + 1
        datasets.append(ds)

    scout = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    _headers(scout, study_uid=study_uid, accession=accession, series_uid=generate_uid())
    scout.SeriesNumber = 1
    scout.SeriesDescription = "SCOUT"
    scout.InstanceNumber = 1
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    datasets.append(scout)
    for dataset in datasets:
        if "TransferSyntaxUID" not in dataset.file_meta:
            dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return datasets


def demo_cd_zip(*, accession: str) -> bytes:
    """A disc as a patient's hospital burns it: DICOMDIR at the root, images in folders."""
    with tempfile.TemporaryDirectory() as folder:
        fileset = FileSet()
        for ds in demo_study_datasets(accession=accession):
            fileset.add(ds)
        fileset.write(folder)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for root, _, files in os.walk(folder):
                for name in sorted(files):
                    path = Path(root) / name
                    archive.write(path, str(path.relative_to(folder)))
            archive.writestr("AUTORUN.INF", "[autorun]\r\nopen=VIEWER\\viewer.exe\r\n")
        return out.getvalue()


def demo_report_pdf(*, institution_name: str, accession: str) -> bytes:
    """The radiology report that came with the disc: it names the date, kind of scan, body part
    and accession number, so matching links it to the study."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    pdf.setTitle("Radiology report")
    lines = [
        ("Helvetica-Bold", 14, "Riverside Community Hospital — Department of Radiology"),
        ("Helvetica", 10, ""),
        ("Helvetica", 10, f"Patient: {DEMO_PATIENT_NAME}    Date of birth: {DEMO_BIRTH_DATE:%d %B %Y}"),
        ("Helvetica", 10, f"Examination: CT head without contrast    Date: {DEMO_STUDY_DATE:%d %B %Y}"),
        ("Helvetica", 10, f"Accession No: {accession}    Referring physician: Dr Marcus Welby"),
        ("Helvetica", 10, ""),
        ("Helvetica-Bold", 11, "Findings"),
        ("Helvetica", 10, "There is a 2.1 cm extra-axial, dural-based mass along the left frontal convexity"),
        (
            "Helvetica",
            10,
            "with mild surrounding vasogenic oedema. No midline shift. Ventricles normal in size.",
        ),
        ("Helvetica", 10, "No acute haemorrhage. The calvarium is intact."),
        ("Helvetica", 10, ""),
        ("Helvetica-Bold", 11, "Impression"),
        ("Helvetica", 10, "Left frontal extra-axial mass, most likely a meningioma. MRI brain with contrast"),
        ("Helvetica", 10, f"and neurosurgical opinion recommended (second opinion: {institution_name})."),
    ]
    y = 800
    for font, size, text in lines:
        pdf.setFont(font, size)
        pdf.drawString(56, y, text)
        y -= size + 8
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def _upload_add(case: Case, data: bytes, *, kind: str, path: str, metadata: dict[str, str]) -> Upload:
    key = f"uploads/{case.public_id}/{uuid.uuid4().hex}"
    tenant_storage().save(key, io.BytesIO(data), len(data))
    return Upload.objects.create(
        case=case,
        owner=case.owner,
        kind=kind,
        status=Upload.Status.RECEIVED,
        relative_path=path,
        length=len(data),
        offset=len(data),
        storage_key=key,
        metadata=metadata,
    )


def demo_case_ensure(*, institution: Institution) -> Case:
    """The demo patient's submitted case with its images and report (idempotent).

    Precondition: the connection is on ``institution``'s schema and its demo patient exists.
    Ingest runs here, synchronously (previews included), so the case is complete when the seed
    returns. No email is sent: the demo patient did not really submit anything.
    """
    owner = _demo_patient(institution.slug)
    existing = Case.objects.filter(owner=owner, question=DEMO_QUESTION).first()
    if existing is not None:
        return existing
    prefix = institution_case_prefix(institution=institution)
    accession = f"{prefix}{DEMO_STUDY_DATE:%Y%m%d}01"
    now = timezone.now()
    with transaction.atomic():
        case = Case.objects.create(
            owner=owner,
            submitter_relation=Case.Relation.SELF,
            patient_name=DEMO_PATIENT_NAME,
            patient_birth_date=DEMO_BIRTH_DATE,
            patient_sex=Case.Sex.FEMALE,
            patient_email=owner.email,
            consented_at=now,
            question=DEMO_QUESTION,
            diagnosis_to_review="Left frontal extra-axial mass (suspected meningioma)",
            history="Headaches for three months; CT at the local hospital found a mass.",
            current_physician="Dr Marcus Welby, Riverside Community Hospital",
            urgency=Case.Urgency.SOON,
            wizard_step="submitted",
        )
        images = _upload_add(
            case, demo_cd_zip(accession=accession), kind=Upload.Kind.IMAGING, path="CD.zip", metadata={}
        )
        report = _upload_add(
            case,
            demo_report_pdf(institution_name=institution.name, accession=accession),
            kind=Upload.Kind.REPORT,
            path="CT head report.pdf",
            metadata={"filename": "CT head report.pdf", "reportKind": "radiology"},
        )
    # The report first, as patients often do: it is matched once the images arrive.
    upload_ingest_run(upload_id=report.pk)
    upload_ingest_run(upload_id=images.pk, previews_now=True)
    case_number_assign(case=case, prefix=prefix)
    # Straight to SUBMITTED without case_status_change: that would email the demo patient.
    Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED, submitted_at=now, status_changed=now)
    case.refresh_from_db()
    return case
