"""The patient's files after the scan: images of someone else are flagged and can be removed,
studies can be left out, reports on the disc become reports (their type asked), refused and
unfinished files are shown as such, and a case needs something usable to be sent."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pydicom
import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from audit.models import AuditEvent
from imaging.identity import MISMATCH
from imaging.ingest import messages
from imaging.ingest.pipeline import upload_ingest_run
from imaging.ingest.selectors import case_imaging_summary
from imaging.models import FileProblem, Report, Study, Upload
from imaging.tests.fixtures.ingest import cd_files, dicom_renamed, report_pdf, upload_make, zip_bytes
from intake import selectors
from intake.models import Case
from intake.tests.test_wizard import patient_user, ready_case, reload, signed_in
from tenants.models import Institution

JANE = {"PatientName": "DOE^JANE", "PatientBirthDate": "19580312", "PatientSex": "F"}


@pytest.fixture
def patient(neuro: Institution) -> User:
    return patient_user(neuro)


@pytest.fixture
def client(neuro: Institution, patient: User) -> Client:
    return signed_in(neuro, patient)


@pytest.fixture
def case(neuro: Institution, patient: User) -> Iterator[Case]:
    """Robert Alvarez (M, 1961), with a CT of his own and an MR of DOE^JANE (F, 1958)."""
    case = ready_case(neuro, patient)
    with tenant_context(neuro):
        case.studies.all().delete()
        Case.objects.filter(pk=case.pk).update(
            patient_name="Robert Alvarez", patient_birth_date=datetime.date(1961, 4, 23), patient_sex="M"
        )
        case.refresh_from_db()
        own = dicom_renamed(
            "CT_small.dcm", PatientName="ALVAREZ^ROBERT", PatientBirthDate="19610423", PatientSex="M"
        )
        for path, data in (("CD/DICOM/IM1", own), ("CD/DICOM/IM2", dicom_renamed("MR_small.dcm", **JANE))):
            upload_ingest_run(upload_id=upload_make(case, data, path=path).pk)
    yield case


def _studies(neuro: Institution, case: Case) -> dict[str, Study]:
    with tenant_context(neuro):
        return {study.modalities: study for study in Study.objects.filter(case=case)}


def _status(client: Client, case: Case) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"/cases/{case.public_id}/images/status.json").json()
    return data


def test_it_warns_calmly_about_images_of_someone_else(client: Client, case: Case) -> None:
    data = _status(client, case)
    by_modality = {study["modalities"]: study for study in data["studies"]}
    assert "These images seem to be of D. J., born 1958" in by_modality["MR"]["warning"]
    assert by_modality["CT"]["warning"] == ""
    assert data["not_theirs_count"] == 1
    summary = client.get(f"/cases/{case.public_id}/summary/").content.decode()
    assert "These images seem to be of D. J., born 1958" in summary
    assert str(selectors.NOT_THEIRS).replace("'", "&#x27;") in summary
    assert "Remove these images" in summary
    # The pages' URLs carry no one's name (the warning is in the page, never in a link).
    assert "DOE" not in client.get(f"/cases/{case.public_id}/images/").content.decode()


def test_the_patient_removes_the_foreign_study(neuro: Institution, client: Client, case: Case) -> None:
    mr = _studies(neuro, case)["MR"]
    response = client.post(f"/cases/{case.public_id}/studies/", {"remove": mr.pk, "back": "summary"})
    assert response["Location"] == f"/cases/{case.public_id}/summary/"
    with tenant_context(neuro):
        mr.refresh_from_db()
        assert mr.excluded_at is not None and mr.excluded_reason == Study.Exclusion.PATIENT_NOT_THEIRS
        assert mr.identity_status == MISMATCH  # kept, with the verdict staff will see
        assert [s.modalities for s in case_imaging_summary(case=case)] == [["CT"]]  # not sent to review
        assert AuditEvent.objects.filter(case_id=case.pk, action="study.exclude").exists()
    data = _status(client, case)
    assert data["not_theirs_count"] == 0 and data["study_count"] == 1 and data["left_out_count"] == 1
    summary = client.get(f"/cases/{case.public_id}/summary/").content.decode()
    assert "Remove these images" not in summary
    assert "1 study is left out: it will not be sent to the physicians" in summary


def test_the_patient_chooses_which_studies_to_send(neuro: Institution, client: Client, case: Case) -> None:
    studies = _studies(neuro, case)
    page = client.get(f"/cases/{case.public_id}/images/").content.decode()
    assert page.count('name="send"') == 2 and page.count(" checked") >= 2  # all ticked by default
    client.post(f"/cases/{case.public_id}/studies/", {"send": [studies["CT"].pk]})
    with tenant_context(neuro):
        assert list(Study.objects.included().filter(case=case).values_list("modalities", flat=True)) == ["CT"]
        left = Study.objects.get(pk=studies["MR"].pk)
        assert left.excluded_reason == Study.Exclusion.PATIENT_UNTICKED
    # Ticked again: back in the request.
    client.post(f"/cases/{case.public_id}/studies/", {"send": [studies["CT"].pk, studies["MR"].pk]})
    with tenant_context(neuro):
        assert Study.objects.included().filter(case=case).count() == 2


def test_outsiders_cannot_choose_or_remove_studies(
    neuro: Institution, cancer: Institution, case: Case, neuro_client: Client
) -> None:
    mr = _studies(neuro, case)["MR"]
    url = f"/cases/{case.public_id}/studies/"
    other = signed_in(neuro, patient_user(neuro))
    assert other.post(url, {"remove": mr.pk}).status_code == 404
    assert other.post(f"/cases/{case.public_id}/reports/kinds/", {}).status_code == 404
    assert neuro_client.post(url, {"remove": mr.pk})["Location"].startswith("/accounts/login/")
    foreign = signed_in(cancer, patient_user(cancer))
    assert foreign.post(url, {"remove": mr.pk}).status_code == 404
    assert other.get(f"/cases/{case.public_id}/images/status.json").status_code == 404
    with tenant_context(neuro):
        assert Study.objects.included().filter(case=case).count() == 2


def test_a_sent_case_keeps_its_studies(neuro: Institution, client: Client, case: Case) -> None:
    with tenant_context(neuro):
        Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED)
    mr = _studies(neuro, case)["MR"]
    assert client.post(f"/cases/{case.public_id}/studies/", {"remove": mr.pk}).status_code == 403
    with tenant_context(neuro):
        assert Study.objects.included().filter(case=case).count() == 2


def test_a_study_of_another_case_cannot_be_touched(neuro: Institution, patient: User, client: Client) -> None:
    mine = ready_case(neuro, patient)
    theirs = ready_case(neuro, patient_user(neuro))
    with tenant_context(neuro):
        their_study = Study.objects.get(case=theirs)
    client.post(f"/cases/{mine.public_id}/studies/", {"remove": their_study.pk})
    client.post(f"/cases/{mine.public_id}/studies/", {"send": [their_study.pk]})
    with tenant_context(neuro):
        their_study.refresh_from_db()
        assert their_study.excluded_at is None


def test_a_case_needs_a_usable_image_or_report(neuro: Institution, client: Client, patient: User) -> None:
    case = ready_case(neuro, patient)
    with tenant_context(neuro):
        case.studies.all().delete()
        case.uploads.update(status=Upload.Status.FAILED)
        refused = upload_make(case, b"<html>not a pdf</html>", path="report.pdf", kind="report")
        upload_ingest_run(upload_id=refused.pk)
    response = client.post(f"/cases/{case.public_id}/summary/")
    assert response.status_code == 400
    assert selectors.MISSING_FILES in response.content.decode()
    assert reload(neuro, case).status == Case.Status.DRAFT
    # Still being checked: wait, rather than "nothing usable".
    with tenant_context(neuro):
        upload_make(case, dicom_renamed("CT_small.dcm"), path="IM9")  # RECEIVED, not ingested yet
    page = client.post(f"/cases/{case.public_id}/summary/").content.decode()
    assert selectors.STILL_CHECKING_NOTHING_USABLE in page


def test_a_refused_report_is_shown_as_refused(neuro: Institution, client: Client, case: Case) -> None:
    with tenant_context(neuro):
        bad = upload_make(case, b"<!doctype html><html>saved page</html>", path="scan.pdf", kind="report")
        upload_ingest_run(upload_id=bad.pk)
    reports = _status(client, case)["reports"]
    assert [(r["name"], r["state"], r["message"]) for r in reports] == [
        ("scan.pdf", "refused", messages.REPORT_HTML)
    ]
    page = client.get(f"/cases/{case.public_id}/reports/").content.decode()
    assert 'data-testid="report-refused"' in page and 'data-testid="report-received"' not in page
    assert "scan.pdf: not accepted" in client.get(f"/cases/{case.public_id}/summary/").content.decode()


def test_an_unfinished_upload_is_not_still_being_checked(
    neuro: Institution, client: Client, case: Case
) -> None:
    with tenant_context(neuro):
        stale = upload_make(case, b"", path="IM7")
        Upload.objects.filter(pk=stale.pk).update(
            status=Upload.Status.RECEIVING,
            updated=datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(hours=20),
        )
    data = _status(client, case)
    assert data["uploads"]["processing"] == 0 and data["uploads"]["unfinished"] == 1
    assert "still being checked" not in data["html"]["received"]
    assert "1 file did not finish sending" in data["html"]["received"]


def test_reports_on_a_disc_in_a_zip_become_reports(neuro: Institution, client: Client, case: Case) -> None:
    pdf = report_pdf(["MRI of the brain, 19 January 2004.", "Findings: no acute abnormality."])
    with tenant_context(neuro):
        upload = upload_make(
            case,
            zip_bytes([("CD/REPORTS/mri report.pdf", pdf), ("CD/REPORTS/broken.pdf", b"%PDF-1.4 broken")]),
            path="my cd.zip",
        )
        upload_ingest_run(upload_id=upload.pk)
        report = Report.objects.get(case=case)
        assert (report.original_name, report.kind, report.source_path) == (
            "mri report.pdf",
            Report.Kind.UNKNOWN,
            "CD/REPORTS/mri report.pdf",
        )
        assert report.match_status != Report.Match.PENDING  # matched as uploaded reports are
        assert not FileProblem.objects.filter(case=case, code=FileProblem.Code.SKIPPED_PROGRAM).exists()
        upload_ingest_run(upload_id=upload.pk)  # a second run makes nothing twice
        assert Report.objects.filter(case=case).count() == 1
    data = _status(client, case)
    (found,) = [r for r in data["reports"] if r["from_disc"]]
    assert found["kind_asked"] and found["state"] == "received"
    # The refused one names the zip and the file in it.
    (refused,) = [g for g in data["problems"] if g["title"] == "Not a readable PDF or photo"]
    assert refused["files"] == ["my cd.zip › CD/REPORTS/broken.pdf"]
    # The patient says what it is (and can change it later).
    client.post(
        f"/cases/{case.public_id}/reports/kinds/", {f"kind-{found['id']}": "radiology", "back": "reports"}
    )
    client.post(f"/cases/{case.public_id}/reports/kinds/", {f"kind-{found['id']}": "not-a-kind"})
    with tenant_context(neuro):
        assert Report.objects.get(case=case).kind == Report.Kind.RADIOLOGY


def test_a_folder_drop_names_the_images_its_disc_index_lists_but_did_not_arrive(
    neuro: Institution, client: Client, case: Case
) -> None:
    files = dict(cd_files())
    listed = [path for path in files if path != "DICOMDIR"]
    sent, missing = listed[:-3], listed[-3:]
    with tenant_context(neuro), mock.patch("pydicom.dcmread", wraps=pydicom.dcmread) as reads:
        index = upload_make(case, files["DICOMDIR"], path="MY CD/DICOMDIR")
        upload_ingest_run(upload_id=index.pk)
        # Its records are read once (pydicom takes ~0.1 ms a record, and a CD has thousands);
        # the first read defers the record sequence, it does not read it.
        assert [call.kwargs.get("defer_size") for call in reads.call_args_list] == [64 * 1024, None]
    with tenant_context(neuro):
        batch = upload_make(
            case, zip_bytes([(f"MY CD/{path}", files[path]) for path in sent]), path="batch-0001.zip"
        )
        Upload.objects.filter(pk=batch.pk).update(metadata={"batchFiles": str(len(sent))})
        upload_ingest_run(upload_id=batch.pk)
    (disc,) = _status(client, case)["missing_from_disc"]
    assert disc["index"] == "MY CD/DICOMDIR" and disc["count"] == 3
    assert disc["files"] == [f"MY CD/{path}" for path in missing]
    assert (
        "MY CD/DICOMDIR: 3 images listed on the disc did not arrive"
        in _status(client, case)["html"]["received"]
    )
