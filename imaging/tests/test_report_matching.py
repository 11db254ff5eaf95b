"""Reports: real PDFs and photos are kept (photos without their metadata), fakes are refused
with a clear message, and each report lands on the study its text describes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date

import pytest
from django_tenants.utils import tenant_context
from PIL import Image
from pydicom.uid import generate_uid

from imaging.ingest import messages
from imaging.ingest.pipeline import upload_ingest_run
from imaging.ingest.reports import report_facts_extract, report_match_set
from imaging.models import FileProblem, Report, Study, Upload
from imaging.tests.fixtures.ingest import (
    case_make,
    dicom_renamed,
    photo_jpeg_with_gps,
    report_pdf,
    sample,
    upload_make,
)
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def _ingest(case: Case, data: bytes, *, kind: str = "imaging", path: str = "file", **meta: str) -> Upload:
    upload = upload_make(case, data, path=path, kind=kind, metadata=meta)
    upload_ingest_run(upload_id=upload.pk, previews_now=False)
    upload.refresh_from_db()
    return upload


def _report(case: Case, lines: list[str], name: str = "report.pdf") -> Report:
    upload = _ingest(case, report_pdf(lines), kind="report", path=name, reportKind="radiology")
    assert upload.status == Upload.Status.DONE
    return Report.objects.get(upload=upload)


def _study(case: Case, **values: object) -> Study:
    """A study of one real CT slice, with its own UIDs and the given header values."""
    study_uid = generate_uid()
    data = dicom_renamed(
        "CT_small.dcm", StudyInstanceUID=study_uid, SeriesInstanceUID=generate_uid(), **values
    )
    _ingest(case, data, path=f"DICOM/{study_uid[-6:]}")
    return Study.objects.get(case=case, study_instance_uid=study_uid)


def test_it_keeps_a_pdf_report_and_reads_its_text(case: Case) -> None:
    report = _report(case, ["CT HEAD WITHOUT CONTRAST", "Date of exam: 19 January 2004"])
    assert report.kind == Report.Kind.RADIOLOGY
    assert report.content_type == "application/pdf"
    assert "CT HEAD WITHOUT CONTRAST" in report.extracted_text
    assert report.storage_key.startswith(f"reports/{case.public_id}/")
    assert "report.pdf" not in report.storage_key
    assert tenant_storage().read_bytes(report.storage_key).startswith(b"%PDF-")


def test_it_matches_by_accession_number_first(case: Case) -> None:
    _study(case, AccessionNumber="ACC20040119A", StudyDate="20040119")
    second = _study(case, AccessionNumber="ACC20040119B", StudyDate="20040119")
    report = _report(case, ["CT chest", "Exam date 2004-01-19", "Accession No: ACC20040119B"])
    assert (report.match_status, report.study, report.match_reason) == (
        Report.Match.MATCHED,
        second,
        messages.MATCH_ACCESSION,
    )


def test_it_matches_by_date_and_kind_of_scan(case: Case) -> None:
    ct = _study(case, StudyDate="20040119")
    _study(case, StudyDate="20050301")
    report = _report(case, ["COMPUTED TOMOGRAPHY OF THE HEAD", "Examination: January 19, 2004"])
    assert (report.match_status, report.study, report.match_reason) == (
        Report.Match.MATCHED,
        ct,
        messages.MATCH_DATE_MODALITY,
    )


def test_it_uses_the_body_part_between_two_scans_of_one_day(case: Case) -> None:
    _study(case, StudyDate="20040119", BodyPartExamined="HEAD", StudyDescription="CT HEAD")
    chest = _study(case, StudyDate="20040119", BodyPartExamined="CHEST", StudyDescription="CT THORAX")
    report = _report(case, ["CT of the chest with contrast", "19/01/2004"])
    assert (report.study, report.match_reason) == (chest, messages.MATCH_DATE_MODALITY_BODY)


def test_it_leaves_a_report_for_staff_when_no_study_fits(case: Case) -> None:
    _study(case, StudyDate="20040119")
    report = _report(case, ["MRI brain", "Date: 2021-06-02"])
    assert (report.match_status, report.study, report.match_reason) == (
        Report.Match.UNMATCHED,
        None,
        messages.UNMATCHED_NO_MATCH,
    )


def test_it_matches_a_report_uploaded_before_its_images(case: Case) -> None:
    report = _report(case, ["CT head", "Study date: 19.01.2004"])
    assert (report.match_status, report.match_reason) == (Report.Match.PENDING, messages.UNMATCHED_NO_STUDIES)
    study = _study(case, StudyDate="20040119")
    report.refresh_from_db()
    assert (report.match_status, report.study) == (Report.Match.MATCHED, study)


def test_it_keeps_staffs_correction_when_matching_again(case: Case) -> None:
    study = _study(case, StudyDate="20040119")
    report = _report(case, ["Clinic letter, no scan named"])
    assert report.match_status == Report.Match.UNMATCHED
    report_match_set(report=report, study=study)
    assert (report.match_status, report.match_reason) == (Report.Match.CORRECTED, messages.MATCH_CORRECTED)
    _study(case, StudyDate="20040119")  # a new study triggers matching again
    report.refresh_from_db()
    assert (report.match_status, report.study) == (Report.Match.CORRECTED, study)


def test_it_refuses_to_link_a_report_to_another_cases_study(case: Case) -> None:
    other = case_make("neuro")
    foreign = _study(other, StudyDate="20040119")
    report = _report(case, ["CT head 2004-01-19"])
    with pytest.raises(ValueError):
        report_match_set(report=report, study=foreign)
    report.refresh_from_db()
    assert report.match_status != Report.Match.CORRECTED


def test_it_refuses_a_pdf_that_is_really_a_web_page(case: Case) -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Report</title></head><body>CT head</body></html>"
    upload = _ingest(case, page, kind="report", path="report.pdf")
    assert upload.status == Upload.Status.FAILED
    assert list(FileProblem.objects.filter(case=case).values_list("code", "message")) == [
        ("report_refused", messages.REPORT_HTML)
    ]
    assert not Report.objects.filter(case=case).exists()
    assert list(tenant_storage().list_keys(f"reports/{case.public_id}")) == []


def test_it_refuses_a_damaged_pdf(case: Case) -> None:
    upload = _ingest(case, b"%PDF-1.7\n" + b"\x00garbage" * 50, kind="report", path="scan.pdf")
    assert upload.status == Upload.Status.FAILED
    assert FileProblem.objects.get(case=case).message == messages.REPORT_DAMAGED_PDF


def test_it_refuses_a_file_that_is_neither_pdf_nor_photo(case: Case) -> None:
    upload = _ingest(case, sample("CT_small.dcm"), kind="report", path="report.dcm")
    assert upload.status == Upload.Status.FAILED
    assert FileProblem.objects.get(case=case).message == messages.REPORT_UNSUPPORTED


def test_it_keeps_a_photo_of_a_paper_report_without_its_metadata(case: Case) -> None:
    original = photo_jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif()  # the original carries EXIF
    upload = _ingest(case, original, kind="report", path="IMG_0001.jpg", reportKind="clinical")
    assert upload.status == Upload.Status.DONE
    report = Report.objects.get(upload=upload)
    assert (report.kind, report.content_type) == (Report.Kind.CLINICAL, "image/jpeg")
    stored = Image.open(io.BytesIO(tenant_storage().read_bytes(report.storage_key)))
    assert stored.size == (300, 400)
    assert not stored.getexif()
    # Photos have no text we can read: left for staff, saying why.
    assert (report.match_status, report.match_reason) == (Report.Match.PENDING, messages.UNMATCHED_NO_STUDIES)


def test_it_refuses_a_broken_photo(case: Case) -> None:
    upload = _ingest(case, b"\xff\xd8\xff\xe0" + b"\x00" * 100, kind="report", path="IMG.jpg")
    assert upload.status == Upload.Status.FAILED
    assert FileProblem.objects.get(case=case).message == messages.REPORT_DAMAGED_IMAGE


def test_it_reads_dates_kinds_of_scan_and_body_parts_from_text() -> None:
    facts = report_facts_extract(
        "PET-CT whole body performed 03/04/2024. Prior MRI of the lumbar spine on 5 Sept 2023. "
        "Accession #: AB-12345"
    )
    assert {date(2024, 4, 3), date(2024, 3, 4), date(2023, 9, 5)} <= facts.dates
    assert {"PT", "CT", "MR"} <= facts.modalities
    assert {"LSPINE", "WHOLEBODY"} <= facts.body_parts
    assert facts.accession_numbers == {"AB-12345"}
