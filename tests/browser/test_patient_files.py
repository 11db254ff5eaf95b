"""Robert Alvarez drops his CD in Chromium. It holds his own CT, an MR of DOE^JANE (F, 1958) and
a PDF report. He is asked what the report is, sees a calm warning on the foreign study, removes
it, and finds his report among his reports; the pages pass axe and fit a 390×844 phone."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from reportlab.pdfgen import canvas

from accounts.models import User
from imaging.models import Report, Study
from intake.models import Case
from payments.models import Payment
from storage.tenant import tenant_storage
from tests.browser.patient import images_step_open
from tests.browser.test_intake_wizard import PHONE, assert_accessible
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def disc(root: Path) -> Path:
    folder = root / "ALVAREZ CD"
    (folder / "DICOM").mkdir(parents=True)
    (folder / "REPORTS").mkdir()
    for name, source, person in (
        ("IM1", "CT_small.dcm", ("ALVAREZ^ROBERT", "19610423", "M")),
        ("IM2", "MR_small.dcm", ("DOE^JANE", "19580312", "F")),
    ):
        ds = pydicom.dcmread(str(get_testdata_file(source)))
        ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientName, ds.PatientBirthDate, ds.PatientSex = person
        ds.save_as(folder / "DICOM" / name, enforce_file_format=True)
    pdf = canvas.Canvas(str(folder / "REPORTS" / "ct report.pdf"))
    pdf.drawString(72, 720, "CT of the head, 19 January 2004. No acute findings.")
    pdf.showPage()
    pdf.save()
    return folder


@pytest.fixture(scope="module")
def committed_case(django_db_setup: None, django_db_blocker: Any) -> Iterator[Case]:
    with django_db_blocker.unblock(), schema_context("neuro"):
        case = Case.objects.create(
            owner=User.objects.get(email="patient@neuro.example.com"),
            consented_at=timezone.now(),
            patient_name="Robert Alvarez",
            patient_birth_date=datetime.date(1961, 4, 23),
            patient_sex="M",
            patient_email="robert@example.com",
            question="Do I need surgery?",
            diagnosis_to_review="Glioma",
        )
    yield case
    with django_db_blocker.unblock(), schema_context("neuro"):
        Payment.objects.filter(case=case).delete()
        for prefix in ("uploads", "dicom", "reports", "previews"):
            tenant_storage().delete_prefix(f"{prefix}/{case.public_id}")
        Case.objects.filter(pk=case.pk).delete()


def test_a_patient_removes_another_persons_study_and_keeps_the_report_from_the_disc(
    live_platform: LiveServer,
    celery_worker_process: Any,
    page: Any,
    tmp_path: Path,
    committed_case: Case,
    django_db_blocker: Any,
) -> None:
    errors = images_step_open(page, live_platform, committed_case)
    case_url = f"/cases/{committed_case.public_id}"

    page.set_input_files("#folder-input", str(disc(tmp_path)))
    page.get_by_test_id("scan-reports").wait_for()
    # The report's type is asked, not assumed.
    page.get_by_role("button", name="Send 3 files").click()
    notice = page.locator("#image-uploader [data-kind-missing]")
    notice.wait_for(state="visible")
    page.get_by_label("Type of ct report.pdf").select_option("radiology")
    page.get_by_role("button", name="Send 3 files").click()
    page.get_by_text("All 3 files sent.").wait_for(timeout=60_000)

    warning = page.get_by_test_id("identity-warning")
    warning.wait_for(timeout=90_000)
    assert "These images seem to be of D. J., born 1958" in warning.inner_text()
    assert page.get_by_test_id("study-row").count() == 2
    assert_accessible(page, "images step with a foreign study")

    page.get_by_role("button", name="Remove these images").click()
    page.wait_for_url(lambda url: url.endswith("/images/"))
    page.get_by_text("Those images were removed from the request").wait_for()
    assert page.get_by_test_id("identity-warning").count() == 0
    assert page.get_by_text("Removed by the patient: not their images").is_visible()

    page.goto(live_platform.url("neuro", f"{case_url}/reports/"))
    received = page.get_by_test_id("report-received")
    received.wait_for(timeout=60_000)
    assert "ct report.pdf" in received.inner_text()
    assert_accessible(page, "reports step")

    page.set_viewport_size(PHONE)
    page.goto(live_platform.url("neuro", f"{case_url}/summary/"))
    assert "1 study is left out" in page.get_by_test_id("missing-advisory").inner_text()
    assert_accessible(page, "summary on a phone")
    assert errors == []

    with django_db_blocker.unblock(), schema_context("neuro"):
        foreign = Study.objects.get(case=committed_case, modalities="MR")
        assert foreign.excluded_reason == Study.Exclusion.PATIENT_NOT_THEIRS
        assert Study.objects.included().filter(case=committed_case).count() == 1
        assert Report.objects.get(case=committed_case).kind == Report.Kind.RADIOLOGY
