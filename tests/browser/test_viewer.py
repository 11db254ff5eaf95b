"""A reviewer reads a real multi-series study in the viewer, in Chromium, over our DICOMweb."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from intake.models import Case
from tests.dicomweb_cases import case_remove, case_with_study, demo_study
from tests.staff import staff_sign_in

pytestmark = pytest.mark.browser

# What the canvas shows, as numbers: how many distinct grey levels and a hash of the pixels.
CANVAS_PIXELS = """
(root) => {
  const source = root.querySelector('[data-viewport] canvas');
  const copy = document.createElement('canvas');
  copy.width = source.width; copy.height = source.height;
  const context = copy.getContext('2d');
  context.drawImage(source, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  const levels = new Set();
  let hash = 0;
  for (let i = 0; i < data.length; i += 4) {
    levels.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
    hash = (hash * 31 + data[i] + data[i + 1] * 7 + data[i + 2] * 13) | 0;
  }
  return { levels: levels.size, hash };
}
"""


@pytest.fixture(scope="module")
def viewer_case(live_platform: Any, django_db_blocker: Any) -> Iterator[Case]:
    """A case with the demo study, committed so the live server sees it, assigned to reviewer1."""
    with django_db_blocker.unblock():
        _, series = demo_study(ct_slices=12)
        case = case_with_study(
            schema_name="neuro",
            owner_email="patient@neuro.example.com",
            series=series,
            reviewer_email="reviewer1@neuro.example.com",
        )
    yield case
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)


def sign_in_as_reviewer(page: Any, live_platform: Any) -> None:
    staff_sign_in(page, "reviewer1@neuro.example.com", base_url=live_platform.url("neuro", "/"))


def _rendered(page: Any) -> dict[str, int]:
    page.wait_for_selector("[data-sr-viewer][data-state=rendered]", timeout=20_000)
    # The frame after the event is the one on screen: wait for two animation frames, not a time.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return page.eval_on_selector("[data-sr-viewer]", CANVAS_PIXELS)


def _pick_series(page: Any, description: str) -> None:
    page.click(f"[data-series-list] button:has-text('{description}')")


def test_it_lets_a_reviewer_read_scroll_window_and_measure_a_study(
    page: Any, live_platform: Any, viewer_case: Case
) -> None:
    sign_in_as_reviewer(page, live_platform)
    page.goto(live_platform.url("neuro", f"/workspace/viewer/{viewer_case.public_id}/"))
    viewport = page.locator("[data-viewport]")

    # The first image is painted from the page's own JSON before the full viewer has loaded,
    # then the full viewer takes over (its canvas only: the stand-in is gone).
    page.wait_for_selector("[data-sr-viewer][data-first-image=painted]", timeout=20_000)
    first = _rendered(page)
    assert first["levels"] > 20, "the canvas is blank"
    assert page.locator("[data-viewport] canvas").count() == 1
    assert page.text_content("[data-position]") == "Image 1 / 12"
    assert page.locator("[data-series-list] img").count() >= 5  # series thumbnails
    page.wait_for_selector("[data-sr-viewer][data-stack=complete]")

    # Scrolling: the wheel, then the keyboard, each shows the next image.
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 120)
    page.wait_for_function("() => document.querySelector('[data-position]').textContent === 'Image 2 / 12'")
    second = _rendered(page)
    assert second["hash"] != first["hash"]
    viewport.focus()
    page.keyboard.press("PageDown")
    page.wait_for_function(
        "() => !document.querySelector('[data-position]').textContent.startsWith('Image 2 ')"
    )

    # Window/level by dragging, then a preset.
    before = _rendered(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 60, steps=8)
    page.mouse.up()
    after = _rendered(page)
    assert after["hash"] != before["hash"]
    page.click("[data-presets] button[data-preset=bone]")
    page.wait_for_function("() => document.querySelector('[data-voi]').textContent === 'W 1800 / L 400'")

    # A length measurement, in millimetres from the pixel spacing.
    page.click("[data-tools] button[data-tool=length]")
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5, steps=6)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('[data-measurement]').textContent.includes('mm')")
    assert page.text_content("[data-measurement]").startswith("Length: ")

    # Compressed series decode in the browser: JPEG 2000, RLE, JPEG baseline, JPEG lossless.
    for description in ("MR JPEG 2000", "Colour RLE", "Colour JPEG baseline", "NM JPEG lossless"):
        _pick_series(page, description)
        pixels = _rendered(page)
        assert pixels["levels"] > 5, f"{description} did not render"
        assert page.is_hidden("[data-message]")

    # A compression the viewer cannot decode says so instead of showing a blank canvas.
    _pick_series(page, "Video clip")
    page.wait_for_selector("[data-sr-viewer][data-state=message]")
    assert "cannot display" in page.text_content("[data-message]")
    assert "MPEG-2" in page.text_content("[data-message]")
