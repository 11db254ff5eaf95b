"""What browser tests of the wizard do first: the demo patient signs in and opens a case's
images step, ready for files."""

from __future__ import annotations

from typing import Any

from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from tests.live import LiveServer

PATIENT = "patient@neuro.example.com"


def images_step_open(page: Any, live_platform: LiveServer, case: Case) -> list[str]:
    """Sign the demo patient in on neuro and open ``case``'s images step; return the page's
    errors (the list keeps growing as the test goes on)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_platform.url("neuro", "/accounts/login/"))
    page.fill("input[name=login]", PATIENT)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(live_platform.url("neuro", f"/cases/{case.public_id}/images/"))
    assert page.url.endswith("/images/"), page.url
    page.locator("#image-uploader[data-ready]").wait_for(state="attached")
    return errors
