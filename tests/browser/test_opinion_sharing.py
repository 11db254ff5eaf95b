"""On a phone, a patient makes a link for their own doctor; the doctor, in another browser, opens
it with the code (a wrong code first), reads the opinion; the patient withdraws the link and it
stops working. Every page passes axe and fits 390×844."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from imaging.models import Study
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.models import Opinion
from tests.browser.test_intake_wizard import PHONE, assert_accessible
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FINDINGS = "A 2 cm non-enhancing lesion in the left frontal lobe."


@pytest.fixture(scope="module")
def released_case(django_db_setup: None, django_db_blocker: Any) -> Iterator[Case]:
    with django_db_blocker.unblock(), schema_context("neuro"):
        now = timezone.now()
        case = Case.objects.create(
            owner=User.objects.get(email="patient@neuro.example.com"),
            status=Case.Status.RELEASED,
            number="NNI-SHARE1",
            consented_at=now,
            submitted_at=now,
            patient_name="Robert Alvarez",
            question="Do I need surgery?",
            diagnosis_to_review="Glioma",
        )
        Study.objects.create(
            case=case, study_instance_uid=f"1.2.826.0.{case.pk}", modalities="MR", instance_count=1
        )
        Opinion.objects.create(
            case=case,
            author=User.objects.get(email="reviewer1@neuro.example.com"),
            findings=FINDINGS,
            impression="Most consistent with a low-grade glioma.",
            agreement="agree",
            recommendation="surgery",
            signed_at=now,
            signer_name="Dr. Robin Reyes",
            released_at=now,
        )
    yield case
    with django_db_blocker.unblock(), schema_context("neuro"):
        Case.objects.filter(pk=case.pk).delete()


def test_a_patient_shares_the_opinion_with_their_doctor(
    live_platform: LiveServer, browser: Any, page: Any, released_case: Case
) -> None:
    page.set_viewport_size(PHONE)
    page.goto(live_platform.url("neuro", "/accounts/login/"))
    page.fill("input[name=login]", "patient@neuro.example.com")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(live_platform.url("neuro", f"/cases/{released_case.public_id}/"))
    assert (
        page.get_by_test_id("open-viewer").is_visible()
        and page.get_by_test_id("download-images").is_visible()
    )
    assert_accessible(page, "status page with the patient's images")
    page.get_by_role("link", name="Read your second opinion").click()
    page.get_by_test_id("share-panel").wait_for()
    assert_accessible(page, "opinion page with the share panel")
    page.get_by_label("Who is it for? (only you see this)").fill("Dr. Local")
    page.get_by_role("button", name="Make a link for my doctor").click()
    link = page.get_by_test_id("share-link").input_value()
    code = page.get_by_test_id("share-code").inner_text()
    assert "/shared/" in link and len(code) == 11
    assert_accessible(page, "the new link and its code")

    doctor_context = browser.new_context(viewport=PHONE)
    try:
        doctor = doctor_context.new_page()
        doctor.goto(link)
        assert FINDINGS not in doctor.content()
        assert_accessible(doctor, "the doctor's code page")
        doctor.get_by_label("Code").fill("AAAAA-AAAAA")
        doctor.get_by_role("button", name="Open the opinion").click()
        assert "not right" in doctor.get_by_test_id("share-error").inner_text()
        doctor.get_by_label("Code").fill(code)
        doctor.get_by_role("button", name="Open the opinion").click()
        doctor.get_by_test_id("shared-opinion").wait_for()
        assert FINDINGS in doctor.get_by_test_id("shared-opinion").inner_text()
        assert_accessible(doctor, "the shared opinion")

        page.goto(live_platform.url("neuro", f"/opinions/{released_case.public_id}/"))
        page.get_by_role("button", name="Withdraw Dr. Local").click()
        page.get_by_text("The link is withdrawn").wait_for()
        doctor.reload()
        assert "This link does not work" in doctor.content() and FINDINGS not in doctor.content()
    finally:
        doctor_context.close()
