"""Every kind of image a patient's CD holds renders in the viewer, in Chromium: the canvas is read
back and must hold a picture (not black, not one flat grey). Real files from pydicom's test files
and pydicom-data: CR/DX (one with PixelSpacing 0\\0, which once rendered black and broke every
series opened after it), US, MR, CT, JPEG 2000, JPEG-LS, JPEG lossless, RLE multi-frame, palette
and RGB colour."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.uid import generate_uid

from intake.models import Case
from tests.dicomweb_cases import SeriesFiles, _relabel, _testdata, case_remove, case_with_study
from tests.staff import staff_sign_in

pytestmark = pytest.mark.browser

# (series description shown in the list, test file): one series per file, in this order.
FILES = [
    ("CR zero spacing", "RG1_UNCR.dcm"),
    ("CT small", "CT_small.dcm"),
    ("CR JPEG 2000", "RG1_J2KR.dcm"),
    ("US palette colour", "OBXXXX1A.dcm"),
    ("US JPEG 2000 colour", "US1_J2KR.dcm"),
    ("US JPEG multi-frame", "examples_ybr_color.dcm"),
    ("US JPEG lossless", "JPGLosslessP14SV1_1s_1f_8b.dcm"),
    ("MR small", "MR_small.dcm"),
    ("MR JPEG 2000", "MR2_J2KR.dcm"),
    ("MR JPEG-LS multi-frame", "emri_small_jpeg_ls_lossless.dcm"),
    ("MR RLE multi-frame", "emri_small_RLE.dcm"),
    ("RGB RLE two frames", "SC_rgb_rle_2frame.dcm"),
    ("OT VOI LUT", "vlut_04.dcm"),
]

# How the canvas looks: distinct colours, mean brightness (0-255) and the share of pixels that
# are not black. Read through a 2D copy: the viewport's canvas is what the reader sees.
CANVAS_STATS = """
(root) => {
  const source = root.querySelector('[data-viewport] canvas');
  const copy = document.createElement('canvas');
  copy.width = source.width; copy.height = source.height;
  const context = copy.getContext('2d');
  context.drawImage(source, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  const levels = new Set();
  let sum = 0, lit = 0, n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const grey = (data[i] + data[i + 1] + data[i + 2]) / 3;
    levels.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
    sum += grey; n += 1;
    if (grey > 8) lit += 1;
  }
  // The middle of the canvas (a 40×40 square), where the image always is.
  let centre = 0, counted = 0;
  for (let y = (copy.height >> 1) - 20; y < (copy.height >> 1) + 20; y++) {
    for (let x = (copy.width >> 1) - 20; x < (copy.width >> 1) + 20; x++) {
      const i = (y * copy.width + x) * 4;
      centre += (data[i] + data[i + 1] + data[i + 2]) / 3; counted += 1;
    }
  }
  return { levels: levels.size, mean: sum / n, lit: lit / n, centre: centre / counted };
}
"""


@pytest.fixture(scope="module")
def formats_case(live_platform: Any, django_db_blocker: Any) -> Iterator[Case]:
    study_uid = generate_uid()
    series = []
    for number, (description, name) in enumerate(FILES, start=1):
        ds = _testdata(name)
        _relabel(ds, study_uid=study_uid, series_uid=generate_uid(), series_number=number, number=1)
        ds.SeriesDescription = description
        series.append(SeriesFiles(description, [ds]))
    with django_db_blocker.unblock():
        case = case_with_study(
            schema_name="neuro",
            owner_email="patient@neuro.example.com",
            series=series,
            reviewer_email="reviewer1@neuro.example.com",
        )
    yield case
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)


@pytest.fixture(scope="module")
def viewer_page(browser: Any, live_platform: Any, formats_case: Case) -> Iterator[Any]:
    """One signed-in page on the case's viewer, shared by the parametrised tests: each opens its
    series after the ones before, as a reader clicking down the list does."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("console", lambda message: print("console:", message.type, message.text))
    page.on("pageerror", lambda error: print("pageerror:", error))
    staff_sign_in(page, "reviewer1@neuro.example.com", base_url=live_platform.url("neuro", "/"))
    page.goto(live_platform.url("neuro", f"/workspace/viewer/{formats_case.public_id}/"))
    page.wait_for_selector("[data-sr-viewer][data-state=rendered]", timeout=30_000)
    yield page
    context.close()


def canvas_after_opening(page: Any, description: str) -> dict[str, float]:
    page.click(f"[data-series-list] button[data-description='{description}']")
    page.wait_for_function(
        """(label) => {
          const root = document.querySelector('[data-sr-viewer]');
          return root.dataset.state !== 'loading' && root.dataset.seriesDescription === label;
        }""",
        arg=description,
        timeout=30_000,
    )
    state = page.get_attribute("[data-sr-viewer]", "data-state")
    assert state == "rendered", f"{description}: {page.text_content('[data-message]')}"
    # The frame after the render event is the one on screen.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return page.eval_on_selector("[data-sr-viewer]", CANVAS_STATS)


@pytest.mark.parametrize(("description", "name"), FILES, ids=[name for _, name in FILES])
def test_it_draws_each_kind_of_image(viewer_page: Any, description: str, name: str) -> None:
    stats = canvas_after_opening(viewer_page, description)
    assert stats["levels"] > 16, f"{name} shows a flat canvas: {stats}"
    assert stats["lit"] > 0.05, f"{name} shows a black canvas: {stats}"
    assert viewer_page.is_hidden("[data-message]")


def test_it_says_an_image_without_spacing_is_not_calibrated(viewer_page: Any) -> None:
    canvas_after_opening(viewer_page, "CR zero spacing")
    assert "Not calibrated" in viewer_page.text_content("[data-calibration]")
    canvas_after_opening(viewer_page, "CT small")
    assert viewer_page.text_content("[data-calibration]") == ""
