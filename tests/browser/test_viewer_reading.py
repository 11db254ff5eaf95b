"""A reviewer reads a case as at a workstation, in Chromium: windows that fit the modality, whose
images these are, cine, side-by-side panes with synchronised scrolling, angle and ellipse ROI
(in HU on CT), invert / rotate, key images and measurements saved with the case, shortcuts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import schema_context
from pydicom.uid import generate_uid

from audit.models import AuditEvent
from imaging.models import ImageAnnotation
from intake.models import Case
from tests.browser.test_viewer_formats import CANVAS_STATS
from tests.dicomweb_cases import SeriesFiles, _relabel, _testdata, case_remove, case_with_study, ct_stack
from tests.staff import staff_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def reading_case(live_platform: Any, django_db_blocker: Any) -> Iterator[Case]:
    """CT stack of 12, two MR series (one a 10-frame multi-frame), each with its own description."""
    study_uid = generate_uid()
    named = [
        ("CT head axial", ct_stack(12)),
        ("MR T1 sagittal", [_testdata("MR_small.dcm")]),
        ("MR T2 multi-frame", [_testdata("emri_small.dcm")]),
    ]
    series = []
    for number, (description, datasets) in enumerate(named, start=1):
        uid = generate_uid()
        for position, ds in enumerate(datasets, start=1):
            _relabel(ds, study_uid=study_uid, series_uid=uid, series_number=number, number=position)
            ds.SeriesDescription = description
        series.append(SeriesFiles(description, datasets))
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


def _open(page: Any, live_platform: Any, case: Case) -> None:
    page.on("console", lambda message: print("console:", message.type, message.text))
    page.on("pageerror", lambda error: print("pageerror:", error))
    page.set_viewport_size({"width": 1400, "height": 1000})
    staff_sign_in(page, "reviewer1@neuro.example.com", base_url=live_platform.url("neuro", "/"))
    page.goto(live_platform.url("neuro", f"/workspace/viewer/{case.public_id}/"))
    page.wait_for_selector("[data-sr-viewer][data-state=rendered][data-stack=complete]", timeout=30_000)


def _pick(page: Any, description: str) -> None:
    page.click(f"[data-series-list] button[data-description='{description}']")
    page.wait_for_function(
        """(label) => {
          const root = document.querySelector('[data-sr-viewer]');
          return root.dataset.state === 'rendered' && root.dataset.stack === 'complete'
            && root.dataset.seriesDescription === label;
        }""",
        arg=description,
        timeout=30_000,
    )


def _canvas(page: Any, pane: int = 0) -> dict[str, float]:
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return page.evaluate(
        f"(stats) => eval(stats)(document.querySelectorAll('[data-pane]')[{pane}])", CANVAS_STATS
    )


def _ellipse(page: Any, data_id: str | None = None) -> dict[str, float]:
    """Where the ellipse ROI is drawn on the active pane (SVG attributes, in screen pixels)."""
    selector = f"ellipse[data-id='{data_id}']" if data_id else "ellipse[data-id$='-ellipse']"
    return page.eval_on_selector(
        f"[data-pane] .svg-layer {selector}",
        "(e) => Object.fromEntries(['cx', 'cy', 'rx', 'ry'].map((k) => [k, Number(e.getAttribute(k))]))",
    )


def _presets(page: Any) -> list[str]:
    return page.eval_on_selector_all("[data-presets] button", "(all) => all.map((b) => b.textContent)")


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    box = page.locator("[data-pane][aria-current=true] [data-viewport]").bounding_box()
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=6)
    page.mouse.up()


def _click_at(page: Any, offset: tuple[float, float]) -> None:
    """A click ``offset`` screen pixels from the middle of the active pane."""
    box = page.locator("[data-pane][aria-current=true] [data-viewport]").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2 + offset[0], box["y"] + box["height"] / 2 + offset[1])


def test_it_fits_windows_to_the_modality_and_says_whose_images_these_are(
    page: Any, live_platform: Any, reading_case: Case
) -> None:
    _open(page, live_platform, reading_case)
    # Which series is which: description, modality, number, image count and date on each line.
    facts = page.eval_on_selector_all(
        "[data-series-list] button", "(all) => all.map((b) => b.innerText.replace(/\\s+/g, ' ').trim())"
    )
    assert facts == [
        "CT head axial CT · series 1 · 12 images · 15 Jan 2024",
        "MR T1 sagittal MR · series 2 · 1 image · 15 Jan 2024",
        "MR T2 multi-frame MR · series 3 · 1 image · 15 Jan 2024",
    ]
    # Whose images: the patient's name, birth date and the study date, on the image.
    assert page.inner_text("[data-pane] [data-patient]").split("\n") == [
        "Test, Viewer",
        "Born 4 Mar 1961",
        "Study 15 Jan 2024",
    ]
    # CT: the automatic window, then the CT presets.
    assert _presets(page) == ["Auto", "Brain", "Soft tissue", "Abdomen", "Lung", "Bone"]
    page.click("[data-presets] button[data-preset=bone]")
    page.wait_for_function("() => document.querySelector('[data-voi]').textContent === 'W 1800 / L 400'")

    # MR: the file's own window first, no CT preset, and an image that is neither black nor white.
    _pick(page, "MR T1 sagittal")
    assert _presets(page) == ["File window", "Auto"]
    # DICOM's linear window maps width - 1 values: Cornerstone shows 1599 for the file's 1600.
    assert page.text_content("[data-voi]") in ("W 1600 / L 600", "W 1599 / L 600")
    stats = _canvas(page)
    assert 10 < stats["mean"] < 200 and stats["levels"] > 16, stats
    # The multi-frame MR has no window of its own: the automatic one spreads its pixels out.
    _pick(page, "MR T2 multi-frame")
    assert _presets(page) == ["Auto"]
    stats = _canvas(page)
    assert 20 < stats["mean"] < 200 and stats["levels"] > 32, stats


def test_it_gives_a_reviewer_the_reading_tools_and_keeps_their_marks(
    page: Any, live_platform: Any, reading_case: Case
) -> None:
    _open(page, live_platform, reading_case)
    root = "[data-sr-viewer]"

    # Keyboard shortcuts are listed in the viewer.
    page.click(".sr-viewer__help summary")
    assert "Play / stop cine" in page.inner_text("[data-shortcuts]")

    # Cine through the CT stack at the chosen frame rate, Space stops it.
    page.select_option("[data-fps]", "30")
    page.click("[data-cine]")
    page.wait_for_function("() => Number(document.querySelector('[data-sr-viewer]').dataset.imageIndex) >= 3")
    page.focus("[data-pane] [data-viewport]")
    page.keyboard.press("Space")
    page.wait_for_function("() => !document.querySelector('[data-sr-viewer]').dataset.cine")

    # Invert and rotate change what is on screen; reset undoes them.
    page.keyboard.press("Home")
    before = _canvas(page)
    page.click("[data-view] button[data-action=invert]")
    assert page.get_attribute("[data-pane]", "data-view") == "inverted"
    inverted = _canvas(page)
    # Every grey level g became 255 - g: so did the mean of the middle of the image.
    assert abs(inverted["centre"] - (255 - before["centre"])) < 8, (before, inverted)
    assert abs(inverted["centre"] - before["centre"]) > 20, (before, inverted)
    page.keyboard.press("r")
    assert page.get_attribute("[data-pane]", "data-view") == "inverted rotated-90"
    page.keyboard.press("0")
    assert page.get_attribute("[data-pane]", "data-view") == ""

    # Ellipse ROI on CT: mean and SD in Hounsfield units, saved with the case.
    page.keyboard.press("e")
    _drag(page, (0.45, 0.45), (0.55, 0.55))
    page.wait_for_function("() => document.querySelector('[data-measurement]').textContent.includes('HU')")
    assert "SD" in page.text_content("[data-measurement]")
    page.wait_for_selector("[data-marks] li[data-kind=ellipse]")
    drawn_ellipse = _ellipse(page)
    # An angle: three clicks.
    page.keyboard.press("a")
    for point in ((-80, -80), (0, 0), (-80, 80)):
        _click_at(page, point)
    page.wait_for_selector("[data-marks] li[data-kind=angle]")
    assert "Angle: 90.0°" in page.text_content("[data-marks] li[data-kind=angle]")
    # A key image, with K.
    page.focus("[data-pane] [data-viewport]")
    page.keyboard.press("k")
    page.wait_for_selector("[data-marks] li[data-kind=key_image]")

    # Two panes side by side: the second opens the next series; with sync on, scrolling the CT
    # moves the other stack too.
    page.click("[data-layouts] button[data-layout='1x2']")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-pane]')[1]?.dataset.state === 'rendered'", timeout=30_000
    )
    assert page.locator("[data-pane]").count() == 2
    assert _canvas(page, 1)["levels"] > 16
    page.click("[data-pane]:nth-child(2) [data-viewport]")
    page.click("[data-series-list] button[data-description='MR T2 multi-frame']")
    page.wait_for_function(
        """() => {
          const pane = document.querySelectorAll('[data-pane]')[1];
          return pane.dataset.seriesDescription === 'MR T2 multi-frame' && pane.dataset.stack === 'complete';
        }""",
        timeout=30_000,
    )
    page.click("[data-sync]")
    page.click("[data-pane]:nth-child(1) [data-viewport]")
    page.keyboard.press("End")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-pane]')[1].dataset.imageIndex === '9'", timeout=10_000
    )
    page.click("[data-layouts] button[data-layout='2x2']")
    page.wait_for_function("() => document.querySelectorAll('[data-pane]').length === 4")

    # Saved with the case and audited: a new visit lists them.
    with schema_context("neuro"):
        kinds = sorted(ImageAnnotation.objects.filter(case=reading_case).values_list("kind", flat=True))
        audited = AuditEvent.objects.filter(
            case_id=reading_case.pk, action="viewer.annotation.create"
        ).count()
    assert kinds == ["angle", "ellipse", "key_image"]
    assert audited == 3
    page.reload()
    page.wait_for_selector("[data-marks] li[data-kind=key_image]", timeout=30_000)
    assert page.locator("[data-marks] li").count() == 3
    page.wait_for_selector(f"{root}[data-state=rendered][data-stack=complete]", timeout=30_000)

    # The measurements are drawn again on the image they were made on (the CT's first): the
    # ellipse where it was, with its statistics in HU, and the angle's 90°.
    with schema_context("neuro"):
        saved = {a.kind: str(a.public_id) for a in ImageAnnotation.objects.filter(case=reading_case)}
    page.wait_for_selector(f"[data-pane] .svg-layer ellipse[data-id='sr-mark-{saved['ellipse']}-ellipse']")
    restored = _ellipse(page, f"sr-mark-{saved['ellipse']}-ellipse")
    assert all(abs(restored[k] - drawn_ellipse[k]) < 1.5 for k in ("cx", "cy", "rx", "ry")), (
        drawn_ellipse,
        restored,
    )
    page.wait_for_function(
        """(uid) => {
          const box = document.querySelector(`[data-pane] .svg-layer [data-annotation-uid='${uid}']`);
          return box && box.textContent.includes('HU');
        }""",
        arg=f"sr-mark-{saved['ellipse']}",
    )
    angle = page.locator(f"[data-pane] .svg-layer [data-annotation-uid='sr-mark-{saved['angle']}']")
    angle.wait_for()
    assert "90" in angle.text_content()
    # Only on that image: the next one shows none of them; back on it, they are there again.
    page.focus("[data-pane] [data-viewport]")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.querySelector('[data-sr-viewer]').dataset.imageIndex === '1'")
    page.wait_for_selector("[data-pane] .svg-layer ellipse", state="detached")
    page.keyboard.press("Home")
    page.wait_for_selector(f"[data-pane] .svg-layer ellipse[data-id='sr-mark-{saved['ellipse']}-ellipse']")

    # Removing a mark takes it off the image too.
    page.click("[data-marks] li[data-kind=ellipse] button[data-remove]")
    page.wait_for_selector("[data-pane] .svg-layer ellipse", state="detached")
    assert page.locator("[data-marks] li").count() == 2


def test_a_patient_reads_their_images_in_spanish(
    browser: Any, live_platform: Any, reading_case: Case
) -> None:
    """The same viewer, opened by the case's own patient whose browser reads Spanish: every word
    the viewer writes (toolbar, series list, overlays, windows, shortcuts) is Spanish."""
    from institutions.management.commands.seed_demo import DEMO_PASSWORD
    from tests.browser.test_intake_wizard import assert_accessible

    context = browser.new_context(locale="es-ES", viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(live_platform.url("neuro", "/accounts/login/"))
        page.fill("input[name=login]", "patient@neuro.example.com")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        page.goto(live_platform.url("neuro", f"/workspace/viewer/{reading_case.public_id}/"))
        page.wait_for_selector("[data-sr-viewer][data-state=rendered][data-stack=complete]", timeout=30_000)

        assert page.inner_text("h1") == f"Imágenes del caso {reading_case.number}"
        facts = page.eval_on_selector_all(
            "[data-series-list] button", "(all) => all.map((b) => b.innerText.replace(/\\s+/g, ' ').trim())"
        )
        assert facts[0] == "CT head axial CT · serie 1 · 12 imágenes · 15 ene 2024"
        assert facts[1] == "MR T1 sagittal MR · serie 2 · 1 imagen · 15 ene 2024"
        assert page.inner_text("[data-pane] [data-patient]").split("\n") == [
            "Test, Viewer",
            "Nacimiento 4 mar 1961",
            "Estudio 15 ene 2024",
        ]
        assert page.inner_text("[data-pane] [data-position]") == "Imagen 1 / 12"
        assert _presets(page) == ["Automática", "Cerebro", "Tejidos blandos", "Abdomen", "Pulmón", "Hueso"]
        tools = page.eval_on_selector_all("[data-tools] button", "(all) => all.map((b) => b.textContent)")
        assert tools == ["Ventana/nivel", "Desplazar", "Zoom", "Recorrer", "Medir", "Ángulo", "ROI elíptica"]
        toolbar = page.inner_text("[role=toolbar]")
        assert "Invertir" in toolbar and "Reproducir" in toolbar and "Flip" not in toolbar
        assert page.locator("[data-key-image]").is_hidden()  # marks are saved by staff only
        page.get_by_text("Atajos de teclado").click()
        assert "Imagen siguiente / anterior" in page.inner_text("[data-shortcuts]")
        page.click("button[data-cine]")
        page.wait_for_function("() => document.querySelector('button[data-cine]').textContent === 'Detener'")
        page.click("button[data-cine]")
        assert_accessible(page, "the patient's viewer in Spanish")
        assert errors == []
    finally:
        context.close()
