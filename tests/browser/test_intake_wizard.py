"""A new patient of the neurological institute walks the whole request in Chromium: signs up,
confirms their email from the real email, fills each step, drops a CD-like folder of real DICOM
files (and a viewer program that must be skipped), sees what a real worker made of them, sends a
PDF report, and gets a case number.
Every step is checked with axe (no serious or critical violations) and at phone width."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file
from reportlab.pdfgen import canvas

from tests.live import BASE_DIR, LiveServer

pytestmark = pytest.mark.browser

AXE = BASE_DIR / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
PASSWORD = "a calm long passphrase"


def assert_accessible(page: Any, where: str) -> None:
    """No serious or critical WCAG 2.1 A/AA violations (axe-core), and no sideways scrolling
    on a phone-sized screen."""
    # Evaluated through DevTools, as the page's Content-Security-Policy refuses injected
    # <script> tags (add_script_tag) like any other inline script.
    page.evaluate(AXE.read_text())
    violations = page.evaluate(
        """async () => {
            const result = await axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
            });
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
        }"""
    )
    assert violations == [], f"{where}: {violations}"
    desktop = page.viewport_size
    page.set_viewport_size(PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.set_viewport_size(desktop)
    assert overflow <= 0, f"{where}: scrolls sideways by {overflow}px on a phone"


def verification_link(mail_dir: Path, address: str, seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message in sorted(mail_dir.glob("*.log")):
            text = message.read_text()
            if f"To: {address}" in text and "Confirm your email address" in text:
                match = re.search(r"(http://\S+/accounts/confirm-email/\S+/)", text)
                assert match, text
                return match.group(1)
        time.sleep(0.2)
    raise AssertionError("no verification email arrived")


def cd_folder(root: Path) -> Path:
    """A disc as patients have them: DICOM files in sub-folders, and a viewer program."""
    disc = root / "PATIENT_CD"
    (disc / "DICOM" / "ST0001").mkdir(parents=True)
    (disc / "DICOM" / "ST0002").mkdir(parents=True)
    shutil.copy(str(get_testdata_file("CT_small.dcm")), disc / "DICOM" / "ST0001" / "IM000001")
    shutil.copy(str(get_testdata_file("MR_small.dcm")), disc / "DICOM" / "ST0002" / "IM000001")
    (disc / "setup.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 2048)
    return disc


def report_pdf(root: Path) -> Path:
    path = root / "radiology-report.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 720, "Radiology report. CT of the head, 19 January 2004. No acute findings.")
    pdf.save()
    return path


def test_it_walks_a_new_patient_through_the_whole_request(
    live_platform: LiveServer, celery_worker_process: Any, page: Any, tmp_path: Path
) -> None:
    email = f"walk-{uuid.uuid4().hex[:8]}@patients.example.com"

    # Sign up from the portal's home page.
    page.goto(live_platform.url("neuro"))
    page.get_by_role("link", name="Request a second opinion").click()
    page.wait_for_url("**/accounts/signup/")
    assert_accessible(page, "sign-up")
    page.get_by_label("Your full name").fill("Alex Walker")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Me: I am the patient").check()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert_accessible(page, "check your email")

    # The real email, branded, with the link that confirms the address and signs in.
    page.goto(verification_link(live_platform.mail_dir, email))
    page.get_by_role("button", name="Confirm my email address").click()
    page.wait_for_url(live_platform.url("neuro", "/"))
    page.get_by_role("link", name="Request a second opinion").click()

    # Step 1: the patient (name and email already known from sign-up).
    page.wait_for_url(re.compile(r".*/cases/[0-9a-f-]{36}/patient/$"))
    case_url = page.url.rsplit("patient/", 1)[0]
    assert "Step 1 of 6" in page.get_by_test_id("wizard-count").inner_text()
    assert page.get_by_label("Patient's full name").input_value() == "Alex Walker"
    assert_accessible(page, "step 1")
    page.get_by_role("button", name="Save and continue").click()  # nothing else filled in yet
    page.get_by_role("alert").wait_for()
    assert "Please enter the patient's date of birth." in page.get_by_role("alert").inner_text()
    assert_accessible(page, "step 1 with errors")
    page.get_by_label("Patient's date of birth").fill("1961-04-23")
    page.get_by_label("Female").check()
    page.get_by_label("agree to the terms").check()
    page.get_by_role("button", name="Save and continue").click()

    # Step 2: the question.
    page.wait_for_url(case_url + "question/")
    assert_accessible(page, "step 2")
    page.get_by_label("Which diagnosis or treatment").fill("A lesion seen on my brain MRI")
    page.get_by_label("What would you like the physician to answer?").fill("Is surgery needed?")
    page.get_by_label("Soon").check()
    page.get_by_role("button", name="Save and continue").click()

    # Step 3: a CD's folder. What was found is shown before anything is sent.
    page.wait_for_url(case_url + "images/")
    page.locator("#image-uploader[data-ready]").wait_for(state="attached")
    assert_accessible(page, "step 3")
    page.set_input_files("#folder-input", str(cd_folder(tmp_path)))
    found = page.get_by_test_id("scan-summary")
    found.wait_for()
    assert found.inner_text() == "We found 2 studies with 2 images."
    studies = page.get_by_test_id("scan-studies").inner_text()
    assert "CT" in studies and "MR" in studies and "1 image" in studies
    assert page.get_by_test_id("scan-skipped").inner_text().startswith("1 file skipped")
    assert_accessible(page, "step 3, before sending")
    page.get_by_role("button", name="Send 2 files").click()
    page.get_by_text("All 2 files sent.").wait_for(timeout=30_000)
    # The worker reads the files; the page shows what the server found, as the browser did.
    received = page.get_by_test_id("received-summary")
    received.get_by_text("2 studies, 2 series, 2 images.").wait_for(timeout=90_000)
    # The images are counted as they are stored; the batch they came in is done a moment later.
    received.get_by_text("2 image files received.").wait_for(timeout=30_000)
    page.get_by_role("link", name="Continue to reports").click()

    # Step 4: a PDF report, with its type.
    page.wait_for_url(case_url + "reports/")
    page.locator("#report-uploader[data-ready]").wait_for(state="attached")
    page.set_input_files("#report-input", str(report_pdf(tmp_path)))
    page.get_by_label("Type of radiology-report.pdf").select_option("radiology")
    assert_accessible(page, "step 4, before sending")
    page.get_by_role("button", name="Send 1 report").click()
    page.get_by_text("1 report sent.").wait_for(timeout=30_000)
    page.get_by_test_id("reports-received").get_by_text("radiology-report.pdf", exact=True).wait_for(
        timeout=10_000
    )
    page.get_by_role("link", name="Continue to check and send").click()

    # Step 5: the summary, then send.
    page.wait_for_url(case_url + "summary/")
    assert "2 files" in page.get_by_test_id("summary-images").inner_text()
    assert "radiology-report.pdf (Radiology report)" in page.get_by_test_id("summary-reports").inner_text()
    assert page.get_by_test_id("missing-blocking").count() == 0
    assert_accessible(page, "step 5")
    page.get_by_role("button", name="Send my request").click()

    # Sent: a case number, and a status page.
    page.wait_for_url(case_url + "submitted/")
    number = page.get_by_test_id("case-number").inner_text()
    assert re.fullmatch(r"NNI-\d{6}", number)
    assert_accessible(page, "sent")
    page.get_by_role("link", name="See the status of this case").click()
    page.wait_for_url(case_url)
    assert page.get_by_test_id("case-status").inner_text() == "Received"
    assert_accessible(page, "status page")
    page.goto(live_platform.url("neuro", "/cases/"))
    assert number in page.content()
