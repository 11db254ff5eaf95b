"""Peer review and an addendum, in Chromium against the live server, as staff do them: the
author asks a colleague to peer review the signed opinion; the colleague, told in their
notifications, disagrees; the administrator sees it on the dashboard; the author answers with
a signed addendum and the colleague agrees; the opinion is released; a later addendum reaches
the patient by email, on their page and in a new PDF while the original PDF stays there."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import schema_context
from pypdf import PdfReader

from accounts.models import User
from audit.models import AuditEvent
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review import services
from review.addenda import ADDENDUM_EMAIL_SUBJECT
from tenants.models import Institution
from tests.dicomweb_cases import case_remove, case_with_study, demo_study
from tests.outbox import outbox_summaries
from tests.staff import staff_sign_in

pytestmark = pytest.mark.browser

FINDINGS = "A 2 cm non-enhancing lesion in the left frontal lobe without mass effect."
DISAGREEMENT = "Series 3 shows faint enhancement at the posterior margin: mention it."
FIRST_ADDENDUM = "On review of series 3, faint enhancement at the posterior margin; the impression stands."
LATER_ADDENDUM = "The histology received on 2 December confirms a low-grade glioma."


@pytest.fixture(scope="module")
def signed_case(live_platform: Any, django_db_blocker: Any) -> Iterator[Case]:
    """A case with a real CT study whose opinion reviewer1 has signed (not released), committed
    so the live server sees it; removed afterwards (its audit events stay, as they must)."""
    with django_db_blocker.unblock():
        _, series = demo_study(ct_slices=4)
        case = case_with_study(
            schema_name="neuro",
            owner_email="patient@neuro.example.com",
            series=series[:1],
            status=Case.Status.IN_REVIEW,
            reviewer_email="reviewer1@neuro.example.com",
        )
        with schema_context("neuro"):
            author = User.objects.get(email="reviewer1@neuro.example.com")
            services.opinion_draft_save(
                case=case,
                author=author,
                data={
                    "findings": FINDINGS,
                    "impression": "Most consistent with a low-grade glioma.",
                    "agreement": "agree",
                    "recommendation": "surgery",
                },
            )
            case.refresh_from_db()
            services.opinion_sign(
                case=case,
                signer=author,
                secret=DEMO_PASSWORD,
                institution=Institution.objects.get(schema_name="neuro"),
            )
            case.refresh_from_db()
    yield case
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)


def _screenshot(page: Any, name: str) -> None:
    # For people checking the layout by eye: SR_SCREENSHOTS=<folder> keeps full-page captures.
    folder = os.environ.get("SR_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"peer-review-{name}.png"), full_page=True)


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _countersign(page: Any, *, verdict: str, comment: str = "") -> None:
    page.check(f"[data-testid=peer-answer] input[name=verdict][value={verdict}]")
    if comment:
        page.fill("#id_peer_comment", comment)
    # Signed in minutes ago: no password asked again (as for the opinion); asked otherwise.
    if page.locator("#id_peer_secret").count():
        page.fill("#id_peer_secret", DEMO_PASSWORD)
    page.click("[data-testid=peer-answer-submit]")
    page.wait_for_load_state()


def _add_addendum(page: Any, text: str) -> None:
    page.click("[data-testid=addendum-open]")
    page.fill("#id_addendum_text", text)
    if page.locator("#id_addendum_secret").count():
        page.fill("#id_addendum_secret", DEMO_PASSWORD)
    page.click("[data-testid=sign-addendum]")
    page.wait_for_selector("text=Addendum signed.")


def test_it_walks_a_peer_review_and_addenda_as_staff_do(
    browser: Any, live_platform: Any, signed_case: Case
) -> None:
    site = live_platform.url("neuro").rstrip("/")
    case_url = site + f"/workspace/cases/{signed_case.public_id}/"

    # The author asks a colleague; the release waits for them.
    author = browser.new_context().new_page()
    staff_sign_in(author, "reviewer1@neuro.example.com", base_url=site)
    author.goto(case_url)
    author.select_option("#id_peer_reviewer", label="Dr. Sam Okafor")
    author.click("[data-testid=peer-request]")
    author.wait_for_selector("text=Peer review asked of Dr. Sam Okafor.")
    assert "Waiting for the peer reviewer" in author.inner_text("[data-testid=peer-verdict]")
    assert author.locator("[data-testid=release-opinion]").count() == 0
    assert "A peer review is waiting" in author.inner_text("[data-testid=release-held]")

    # The colleague finds it among their notifications and disagrees, countersigning.
    peer = browser.new_context().new_page()
    staff_sign_in(peer, "reviewer2@neuro.example.com", base_url=site)
    peer.goto(site + "/workspace/notifications/")
    peer.click(f"[data-testid=notice] >> text=Peer review asked of you: {signed_case.number}")
    peer.wait_for_selector("[data-testid=peer-answer]")
    assert FINDINGS in peer.inner_text("[data-testid=signed-opinion]")
    _screenshot(peer, "peer-answer")
    _countersign(peer, verdict="disagree", comment=DISAGREEMENT)
    peer.wait_for_selector("text=You disagreed; the opinion is held until this is resolved.")

    # The administrator sees the disagreement on the dashboard and opens the case from it.
    admin = browser.new_context().new_page()
    staff_sign_in(admin, "admin@neuro.example.com", base_url=site)
    admin.goto(site + "/workspace/dashboard/")
    _screenshot(admin, "dashboard")
    panel = admin.inner_text("[data-testid=peer-reviews-open]")
    assert "1 disagreement to resolve" in panel and str(signed_case.number) in panel
    admin.click(f"[data-testid=peer-open-row] >> text={signed_case.number}")
    admin.wait_for_selector("[data-testid=peer-comment]")
    assert DISAGREEMENT in admin.inner_text("[data-testid=peer-comment]")

    # The author answers with a signed addendum; the colleague agrees after all.
    author.reload()
    assert DISAGREEMENT in author.inner_text("[data-testid=peer-comment]")
    assert "The peer reviewer disagrees" in author.inner_text("[data-testid=release-held]")
    _add_addendum(author, FIRST_ADDENDUM)
    assert FIRST_ADDENDUM in author.inner_text("[data-testid=addenda]")
    peer.reload()
    assert FIRST_ADDENDUM in peer.inner_text("[data-testid=addenda]")
    _countersign(peer, verdict="agree")
    peer.wait_for_selector("text=You agreed; the opinion can be released.")

    # Now it can be released.
    author.reload()
    assert "Agrees" in author.inner_text("[data-testid=peer-verdict]")
    _screenshot(author, "agreed")
    author.click("[data-testid=release-opinion]")
    author.wait_for_selector("text=Released to the patient")

    # A later addendum: the patient is emailed (through the outbox) and reads it.
    _add_addendum(author, LATER_ADDENDUM)
    assert author.is_visible("text=Addendum signed. The patient has been emailed.")
    subject = f"{ADDENDUM_EMAIL_SUBJECT} ({signed_case.number})"
    assert outbox_summaries("neuro").count(subject) == 1

    patient = browser.new_context(accept_downloads=True).new_page()
    patient.goto(site + "/accounts/login/")
    patient.fill("input[name=login]", "patient@neuro.example.com")
    patient.fill("input[name=password]", DEMO_PASSWORD)
    patient.click("form:has(input[name=login]) button[type=submit]")
    patient.wait_for_load_state()
    patient.goto(site + f"/opinions/{signed_case.public_id}/")
    _screenshot(patient, "patient-opinion")
    text = patient.inner_text("[data-testid=patient-opinion]")
    assert FIRST_ADDENDUM in text and LATER_ADDENDUM in text and FINDINGS in text
    with patient.expect_download() as current:
        patient.click("[data-testid=download-pdf]")
    with open(current.value.path(), "rb") as stream:
        current_text = _pdf_text(stream.read())
    assert "Addendum 2" in current_text and "low-grade glioma" in current_text
    patient.click("[data-testid=pdf-versions] summary")
    with patient.expect_download() as original:
        patient.click("[data-testid=pdf-version] >> text=Original opinion")
    with open(original.value.path(), "rb") as stream:
        original_text = _pdf_text(stream.read())
    assert "Addendum" not in original_text and "left frontal lobe" in original_text

    for page in (author, peer, admin, patient):
        page.context.close()

    with schema_context("neuro"):
        actions = list(
            AuditEvent.objects.filter(case_id=signed_case.pk, allowed=True).values_list("action", flat=True)
        )
    assert actions.count("opinion.addendum") == 2
    assert actions.count("peer_review.answer") == 2
    assert {"peer_review.request", "opinion.release", "opinion.view", "opinion.download"} <= set(actions)
