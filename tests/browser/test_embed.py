"""The website embed seen from another origin: the button script renders in the institution's
colours; the embeddable portal loads in an iframe on an allowed origin (handing off to a new tab
where the browser withholds cookies) and is blocked by CSP frame-ancestors elsewhere."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer, free_port
from tests.staff import staff_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def hospital_site(tmp_path: Path, live_platform: LiveServer) -> Iterator[int]:
    """The institution's own website: a static page on another origin (port) that pastes the
    button snippet and frames the portal."""
    portal = live_platform.url("neuro")
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><title>Northfield hospital</title></head><body>"
        "<h1>Northfield hospital</h1>"
        f'<script src="{portal}embed.js" async></script>'
        f'<iframe id="portal" src="{portal}embed/" title="Second opinion" width="600" height="500"></iframe>'
        "</body></html>"
    )
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


def _set_allowed_origins(page: Any, live_platform: LiveServer, origins: str) -> None:
    page.goto(live_platform.url("neuro", "/settings/website/"))
    page.get_by_label("Websites allowed to embed your portal").fill(origins)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()


def test_it_embeds_the_button_and_the_portal_on_allowed_origins_only(
    live_platform: LiveServer, browser: Any, hospital_site: int
) -> None:
    admin_context = browser.new_context()
    admin = admin_context.new_page()
    staff_sign_in(admin, "admin@neuro.example.com", base_url=live_platform.url("neuro"))
    allowed = f"http://127.0.0.1:{hospital_site}"
    _set_allowed_origins(admin, live_platform, allowed)
    visitor_context = browser.new_context()
    try:
        page = visitor_context.new_page()
        page.goto(f"{allowed}/")
        button = page.get_by_role("link", name="Request a second opinion (Northfield Neurological Institute")
        button.wait_for()
        assert button.get_attribute("href") == live_platform.url("neuro")
        assert button.get_attribute("target") == "_blank"
        colour = button.evaluate("el => getComputedStyle(el).backgroundColor")
        assert colour == "rgb(75, 46, 131)"  # #4b2e83, the institute's primary colour

        frame = page.frame_locator("#portal")
        assert frame.get_by_test_id("institution-name").inner_text() == "Northfield Neurological Institute"
        # 127.0.0.1 and neuro.localhost are different sites: the session cookie (SameSite=Lax)
        # would not reach the frame, so the portal hands off to a new tab.
        continue_link = frame.get_by_test_id("continue-new-tab")
        continue_link.wait_for(state="visible")
        with visitor_context.expect_page() as opened:
            continue_link.click()
        new_tab = opened.value
        new_tab.wait_for_load_state()
        assert new_tab.url == live_platform.url("neuro")
        new_tab.close()

        # The same page served from an origin the institution did not list: CSP blocks the frame.
        # Waits for Chromium's report of the refusal (never for a fixed time).
        with page.expect_console_message(lambda message: "frame-ancestors" in message.text, timeout=15_000):
            page.goto(f"http://hospital.localhost:{hospital_site}/")
            page.get_by_role(
                "link", name="Request a second opinion (Northfield Neurological Institute"
            ).wait_for()
        assert page.frame_locator("#portal").get_by_test_id("institution-name").count() == 0
    finally:
        _set_allowed_origins(admin, live_platform, "")
        visitor_context.close()
        admin_context.close()
