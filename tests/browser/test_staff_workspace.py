"""The staff workspace's new pieces in Chromium (issue 15): a case holding another patient's
study names whose images they are, is flagged in the queue, and the coordinator excludes the
study; the notifications page lists the new case and saves email choices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import schema_context

from imaging.models import Study
from intake.models import Case
from tests.dicomweb_cases import case_remove, case_with_study, demo_study
from tests.staff import staff_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mixed_case(live_platform: Any, django_db_blocker: Any) -> Iterator[tuple[Case, Study]]:
    with django_db_blocker.unblock():
        _, series = demo_study(ct_slices=2)
        case = case_with_study(
            schema_name="neuro",
            owner_email="patient@neuro.example.com",
            series=series[:1],
            status=Case.Status.SUBMITTED,
        )
        with schema_context("neuro"):
            Case.objects.filter(pk=case.pk).update(patient_name="Pat Patient")
            stranger = Study.objects.create(
                case=case,
                study_instance_uid=f"9.9.9.{case.pk}",
                description="CT chest",
                modalities="CT",
                patient_name_in_files="DOE^JOHN",
                patient_birth_date_in_files="19580101",
                identity_status=Study.Identity.MISMATCH,
            )
    yield case, stranger
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)


def test_it_shows_whose_images_and_excludes_the_strangers_study(
    browser: Any, live_platform: Any, mixed_case: tuple[Case, Study]
) -> None:
    case, _ = mixed_case
    site = live_platform.url("neuro").rstrip("/")
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    staff_sign_in(page, "admin@neuro.example.com", base_url=site)

    page.goto(site + "/workspace/?state=submitted")
    row = page.locator("[data-testid=queue-row]", has_text=str(case.number))
    assert row.locator("[data-testid=identity-flag]").is_visible()
    row.get_by_role("link", name=str(case.number)).click()

    banner = page.locator("[data-testid=identity-banner]")
    assert "DOE^JOHN" in banner.inner_text() and "Pat Patient" in banner.inner_text()
    banner.get_by_role("button", name="Exclude this study from the case").click()
    page.wait_for_selector("text=The study is excluded from the case")
    assert page.locator("[data-testid=identity-banner]").count() == 0
    excluded = page.locator("[data-testid=excluded-studies]")
    assert "Excluded studies (1)" in excluded.inner_text()
    assert page.locator("[data-testid=study]").count() == 1

    page.goto(site + "/workspace/notifications/")
    assert page.locator("[data-testid=notifications-link][aria-current=page]").is_visible()
    page.get_by_label("Case due tomorrow").uncheck()
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("text=Email preferences saved.")
    assert not page.get_by_label("Case due tomorrow").is_checked()
    assert page.get_by_label("Case assigned to you").is_checked()


def test_it_gives_the_onboarding_start_and_sign_in_pages_the_desktop_width(
    browser: Any, live_platform: Any
) -> None:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    for path in ("/start/", "/start/sign-in/"):
        response = page.goto(live_platform.url(path=path))
        assert response is not None and response.status == 200, path
        box = page.locator(".wizard-body").bounding_box()
        assert box is not None
        width = box["width"]
        assert width > 600, (path, width)  # was the steps list's 14rem column (~224 px)
