"""The whole review, in Chromium against the live server: a coordinator assigns a submitted case,
the reviewer opens it (report drawn by pdf.js beside the study), writes and signs the opinion and
releases it, and the patient reads it on the portal and downloads its PDF."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from reportlab.pdfgen import canvas

from audit.models import AuditEvent
from imaging.models import Report
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from storage.tenant import tenant_storage
from tests.dicomweb_cases import case_remove, case_with_study, demo_study
from tests.staff import staff_sign_in

pytestmark = pytest.mark.browser

FINDINGS = "A 2 cm non-enhancing lesion in the left frontal lobe without mass effect."
IMPRESSION = "Most consistent with a low-grade glioma."


def _report_pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.setFont("Helvetica", 14)
    page.drawString(72, 720, "MRI brain report: lesion in the left frontal lobe.")
    page.showPage()
    page.save()
    return out.getvalue()


def _screenshot(page: Any, name: str) -> None:
    # For people checking the layout by eye: SR_SCREENSHOTS=<folder> keeps full-page captures.
    folder = os.environ.get("SR_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"review-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def submitted_case(live_platform: Any, django_db_blocker: Any) -> Iterator[Case]:
    """A submitted, unassigned case with a real CT study and a PDF report, committed so the
    live server sees it; removed afterwards (its audit events stay, as they must)."""
    with django_db_blocker.unblock():
        _, series = demo_study(ct_slices=6)
        case = case_with_study(
            schema_name="neuro",
            owner_email="patient@neuro.example.com",
            series=series[:1],
            status=Case.Status.SUBMITTED,
        )
        with schema_context("neuro"):
            Case.objects.filter(pk=case.pk).update(
                patient_name="Pat Patient", specialty="neurology", submitted_at=timezone.now()
            )
            data = _report_pdf()
            key = f"cases/{case.public_id}/reports/{uuid.uuid4().hex}.pdf"
            tenant_storage("neuro").save(key, io.BytesIO(data), len(data))
            Report.objects.create(
                case=case,
                content_type="application/pdf",
                storage_key=key,
                size=len(data),
                study=case.studies.first(),
                match_status=Report.Match.MATCHED,
            )
    yield case
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)


# reviewer2 and the neuro coordinator: no other browser test signs them in, so no authenticator
# code is used twice on the live server within one 30-second period (allauth refuses reuse).
def test_it_walks_a_case_from_assignment_to_the_patients_pdf(
    browser: Any, live_platform: Any, submitted_case: Case
) -> None:
    site = live_platform.url("neuro").rstrip("/")
    case_path = f"/workspace/cases/{submitted_case.public_id}/"

    # The coordinator finds the case in the queue and assigns it from its row.
    coordinator = browser.new_context().new_page()
    staff_sign_in(coordinator, "coordinator@neuro.example.com", base_url=site)
    coordinator.goto(site + "/workspace/?state=submitted")
    _screenshot(coordinator, "queue")
    row = coordinator.locator("[data-testid=queue-row]", has_text=str(submitted_case.number))
    row.locator("select[name=reviewer]").select_option(label="Dr. Sam Okafor")
    row.get_by_role("button", name="Assign").click()
    coordinator.wait_for_selector(f"text={submitted_case.number} assigned to Dr. Sam Okafor.")
    assert coordinator.url.endswith("/workspace/?state=submitted")  # back where they were
    coordinator.goto(site + "/workspace/?state=assigned")
    row = coordinator.locator("[data-testid=queue-row]", has_text=str(submitted_case.number))
    assert row.locator("[data-testid=row-reviewer]").inner_text() == "Dr. Sam Okafor"
    row.get_by_role("link", name=str(submitted_case.number)).click()
    coordinator.wait_for_url("**" + case_path)
    assert coordinator.inner_text("[data-testid=assigned-reviewer]") == "Dr. Sam Okafor"

    # The reviewer opens it: their case comes first, the report is drawn into a canvas.
    reviewer = browser.new_context().new_page()
    staff_sign_in(reviewer, "reviewer2@neuro.example.com", base_url=site)
    reviewer.goto(site + "/workspace/")
    assert submitted_case.number in reviewer.inner_text("[data-testid=queue-row]:first-child")
    reviewer.click(f"text={submitted_case.number}")
    reviewer.wait_for_selector(".pdf-view[data-rendered='1'] canvas", timeout=20_000)
    # Opening the case changes nothing (no GET moves a case); the reviewer starts the review.
    assert reviewer.inner_text("[data-testid=case-status]") == "Assigned"
    reviewer.click("[data-testid=start-review]")
    reviewer.wait_for_function(
        "() => document.querySelector('[data-testid=case-status]').textContent.trim() === 'In review'"
    )
    reviewer.wait_for_selector(".pdf-view[data-rendered='1'] canvas", timeout=20_000)

    # Writes (autosaved), then signs with the password again.
    reviewer.fill("#id_findings", FINDINGS)
    reviewer.fill("#id_impression", IMPRESSION)
    reviewer.select_option("#id_agreement", "agree")
    reviewer.select_option("#id_recommendation", "surgery")
    reviewer.locator("#id_comments").focus()  # leaving a field saves at once
    reviewer.fill("#id_comments", "Discuss resection with your neurosurgeon.")
    reviewer.wait_for_function(
        "() => document.querySelector('[data-testid=autosave-status]').textContent.startsWith('Draft saved')",
        timeout=15_000,
    )
    _screenshot(reviewer, "case-workspace")
    # Signed in minutes ago: the password is not asked again (asked otherwise).
    if reviewer.locator("#id_secret").count():
        reviewer.fill("#id_secret", DEMO_PASSWORD)
    reviewer.click("[data-testid=sign-opinion]")
    reviewer.wait_for_selector("[data-testid=signed-opinion]")
    assert FINDINGS in reviewer.inner_text("[data-testid=signed-opinion]")
    reviewer.click("[data-testid=release-opinion]")
    reviewer.wait_for_selector("text=Released to the patient")
    assert reviewer.inner_text("[data-testid=case-status]") == "Opinion ready"

    # The patient reads it and downloads the PDF.
    patient = browser.new_context(accept_downloads=True).new_page()
    patient.goto(site + "/accounts/login/")
    patient.fill("input[name=login]", "patient@neuro.example.com")
    patient.fill("input[name=password]", DEMO_PASSWORD)
    patient.click("form:has(input[name=login]) button[type=submit]")
    patient.wait_for_load_state()
    patient.goto(site + f"/opinions/{submitted_case.public_id}/")
    _screenshot(patient, "patient-opinion")
    text = patient.inner_text("[data-testid=patient-opinion]")
    assert FINDINGS in text and "Dr. Sam Okafor" in text
    with patient.expect_download() as download_info:
        patient.click("[data-testid=download-pdf]")
    path = download_info.value.path()
    with open(path, "rb") as downloaded:
        assert downloaded.read(5) == b"%PDF-"

    for page in (coordinator, reviewer, patient):
        page.context.close()

    with schema_context("neuro"):
        actions = set(
            AuditEvent.objects.filter(case_id=submitted_case.pk, allowed=True).values_list(
                "action", flat=True
            )
        )
    assert {
        "case.assign",
        "case.view",
        "report.view",
        "opinion.sign",
        "opinion.release",
        "opinion.view",
    } <= actions
    assert "opinion.download" in actions
