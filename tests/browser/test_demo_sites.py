"""A person opens both demo institutions in Chromium and sees each one's own portal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.browser


def test_it_shows_each_demo_institution_its_own_name_and_logo(live_platform: LiveServer, page: Any) -> None:
    page.goto(live_platform.url("neuro"))
    assert page.get_by_test_id("institution-name").inner_text() == "Northfield Neurological Institute"
    assert "Lakeside" not in page.content()
    logo_loaded = page.eval_on_selector("img.brand-logo", "img => img.complete && img.naturalWidth > 0")
    assert logo_loaded

    page.goto(live_platform.url("cancer"))
    assert page.get_by_test_id("institution-name").inner_text() == "Lakeside Cancer Center"
    assert "Northfield" not in page.content()
    header_colour = page.eval_on_selector("header.site-header", "el => getComputedStyle(el).backgroundColor")
    assert header_colour == "rgb(11, 94, 85)"  # #0b5e55, the cancer centre's primary colour


def test_it_signs_a_patient_in_through_the_browser(live_platform: LiveServer, page: Any) -> None:
    page.goto(live_platform.url("neuro", "/accounts/login/"))
    page.get_by_label("Email").fill("patient@neuro.example.com")
    page.get_by_label("Password").fill("secondread-demo")
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(live_platform.url("neuro", "/"))
    assert "Signed in as patient@neuro.example.com" in page.content()


def test_it_shows_the_platform_site_at_the_platform_domain(live_platform: LiveServer, page: Any) -> None:
    page.goto(live_platform.url())
    assert "Your own second-opinion service" in page.content()


def test_it_shows_a_404_page_for_an_unknown_institution(live_platform: LiveServer, page: Any) -> None:
    response = page.goto(live_platform.url("nosuchplace"))
    assert response.status == 404
    assert "There is no second-opinion service at this address" in page.content()
