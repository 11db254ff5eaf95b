"""The viewer over loopback: time to the first image of a 512×512 CT series, and scrolling a
300-image series with the mouse wheel.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_viewer.py [--slices 300]

It creates its own throw-away database (``test_secondread_bench_viewer``), migrates and seeds it,
stores a case whose CT series is made from a real 512×512 CT slice (pydicom's
eCT_Supplemental.dcm, uncompressed 16-bit, new UIDs, each slice shifted), serves it with
gunicorn (1 worker, 8 threads) with the run settings of ``./sr run`` (config.settings.base:
static files collected by whitenoise's CompressedManifestStaticFilesStorage, hashed names cached
for a year, gzip/brotli; Redis cache), and drives Chromium:

1. first image: from navigation start of the viewer page (signed in as reviewer1) until a
   canvas in the viewport shows non-blank pixels (first.js paints it from the page's JSON and a
   frame fetched by an inline script), and until the full viewer (Cornerstone3D: tools, wheel
   scrolling) shows it, measured in the page (``performance.now()``); first with an empty
   browser cache, then again in the same browser (static files cached);
2. scrolling: Playwright wheel events at up to 60 Hz (Chromium acknowledges each once handled,
   so the rate it reaches is printed; on an empty page it tops out near 30/s here) over the
   whole series, counting the distinct images actually painted and how far the image shown lags
   behind the wheel when the wheel stops; then the same once the frames are in the viewer's
   cache (a second pass back up).

Targets (issue 5): first image < 1 s; scrolling keeps up with the wheel.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ["SR_TEST_RUN"] = "bench_viewer"
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from accounts.models import User  # noqa: E402
from institutions.management.commands.seed_demo import DEMO_PASSWORD  # noqa: E402
from review.demo import DEMO_TOTP_SECRET  # noqa: E402
from tests.dicomweb_cases import SeriesFiles, case_with_study, ct_stack  # noqa: E402
from tests.live import BIN, CHROMIUM, CHROMIUM_ARGS, _wait_for_http, child_env, free_port  # noqa: E402
from tests.staff import totp_code  # noqa: E402

FIRST_IMAGE = """
async () => {
  const deadline = performance.now() + 30000;
  const lit = (canvas) => {
    if (!canvas || canvas.width === 0) return false;
    const copy = document.createElement('canvas');
    copy.width = canvas.width; copy.height = canvas.height;
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const data = context.getImageData(0, 0, copy.width, copy.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 64) if (data[i] > 16) count++;
    return count > 100;
  };
  let painted = -1;
  while (performance.now() < deadline) {
    const canvases = [...document.querySelectorAll('[data-viewport] canvas')];
    if (painted < 0 && canvases.some(lit)) painted = performance.now();
    if (painted >= 0 && document.querySelector('[data-sr-viewer]')?.dataset.state === 'rendered') {
      return [painted, performance.now()];
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  return [painted, -1];
}
"""

# Where the time to the first image went: the requests that finished before it, slowest first.
RESOURCES = """
(until) => performance.getEntriesByType('resource')
  .filter((entry) => entry.responseEnd <= until + 1)
  .sort((a, b) => b.duration - a.duration).slice(0, 6)
  .map((entry) => `${entry.name.split('/').slice(-2).join('/').slice(-40)} `
    + `${entry.startTime.toFixed(0)}+${entry.duration.toFixed(0)} ms`)
"""

COUNT_PAINTED = """
() => {
  const root = document.querySelector('[data-sr-viewer]');
  window.__painted = new Set();
  root.querySelector('[data-viewport]').addEventListener('CORNERSTONE_IMAGE_RENDERED',
    () => window.__painted.add(root.dataset.imageIndex));
}
"""


def _scroll(page: object, steps: int, direction: int) -> str:
    """Real wheel events from the mouse, one per 60 Hz frame; then wait for the viewer to show
    the last image. Returns a line of numbers."""
    box = page.locator("[data-viewport]").bounding_box()  # type: ignore[attr-defined]
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # type: ignore[attr-defined]
    page.evaluate(COUNT_PAINTED)  # type: ignore[attr-defined]
    target = str(steps) if direction > 0 else "0"
    start = time.perf_counter()
    for step in range(steps):
        page.mouse.wheel(0, 100 * direction)  # type: ignore[attr-defined]
        # 60 Hz when Chromium takes the events that fast; it answers each once it has handled it.
        time.sleep(max(0.0, start + (step + 1) / 60 - time.perf_counter()))
    wheel_done = time.perf_counter()
    # Chromium coalesces wheel events when the page is busy, so the last image may not be the
    # target: wait for the target, or for the index to settle (and report where it settled).
    index_js = "document.querySelector('[data-sr-viewer]').dataset.imageIndex"
    settled, last, caught_up = False, None, time.perf_counter()
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        current = page.evaluate(index_js)  # type: ignore[attr-defined]
        if current == target:
            caught_up = time.perf_counter()
            break
        if current != last:
            last, caught_up = current, time.perf_counter()
        elif time.perf_counter() - caught_up > 1.0:
            settled = True
            break
        time.sleep(0.01)
    if settled:
        print(f"  (wheel events were coalesced: the viewer settled on image {last}, target {target})")
    painted = page.evaluate("window.__painted.size")  # type: ignore[attr-defined]
    wheel_seconds = wheel_done - start
    return (
        f"{steps} wheel events in {wheel_seconds:.2f} s ({steps / wheel_seconds:.0f}/s); "
        f"{painted} distinct images painted ({painted / (caught_up - start):.0f} images/s); "
        f"last image shown {1000 * (caught_up - wheel_done):.0f} ms after the last wheel event"
    )


def _sign_in(page: object, base: str) -> None:
    page.goto(f"{base}/accounts/login/")  # type: ignore[attr-defined]
    page.fill("input[name=login]", "reviewer1@neuro.example.com")  # type: ignore[attr-defined]
    page.fill("input[name=password]", DEMO_PASSWORD)  # type: ignore[attr-defined]
    page.click("form [type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url("**/2fa/authenticate/**")  # type: ignore[attr-defined]
    page.fill("input[name=code]", totp_code(DEMO_TOTP_SECRET))  # type: ignore[attr-defined]
    page.click("form [type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    args = parser.parse_args()

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    data_dir = ""
    try:
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        started = time.perf_counter()
        slices = ct_stack(args.slices, size=512)
        study_uid, series_uid = generate_uid(), generate_uid()
        for number, ds in enumerate(slices, start=1):
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber = study_uid, series_uid, 1
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = number
        case = case_with_study(
            schema_name="neuro",
            owner_email="patient@neuro.example.com",
            series=[SeriesFiles("CT 512", slices)],
            reviewer_email="reviewer1@neuro.example.com",
        )
        print(f"stored {args.slices} CT slices of 512×512 in {time.perf_counter() - started:.1f} s")
        # The seed ran with the test settings' fast MD5 hasher, which the run settings refuse.
        with schema_context("neuro"):
            User.objects.filter(email="reviewer1@neuro.example.com").update(
                password=PBKDF2PasswordHasher().encode(DEMO_PASSWORD, PBKDF2PasswordHasher().salt())
            )

        root = Path(__file__).resolve().parents[2]
        subprocess.run(["node", "build.mjs"], cwd=root / "frontend", check=True)
        # Served as in production (./sr run): the run settings, static files collected with
        # whitenoise's CompressedManifestStaticFilesStorage (hashed names cached for a year,
        # gzip/brotli copies), on the benchmark's database and files.
        data_dir = tempfile.mkdtemp(prefix="bench-viewer-")
        env = {
            **child_env(SR_DATA_DIR=data_dir, STORAGE_FILESYSTEM_ROOT=str(settings.STORAGE_FILESYSTEM_ROOT)),
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
        }
        collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"]
        subprocess.run(collect, cwd=root, env=env, check=True)
        port = free_port()
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "8",
                "--worker-class",
                "gthread",
                "--log-level",
                "warning",
            ],
            cwd=root,
            env={**env, "PLATFORM_PORT": str(port)},
        )
        _wait_for_http(f"http://127.0.0.1:{port}/healthz", "localhost", server)
        base = f"http://neuro.localhost:{port}"
        viewer = f"{base}/workspace/viewer/{case.public_id}/"

        from playwright.sync_api import Response, sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            _sign_in(page, base)
            static_headers: dict[str, str] = {}

            def note_static(response: Response) -> None:
                if "/static/dist/" in response.url and response.url.endswith(".js"):
                    static_headers.setdefault(
                        response.url.rsplit("/", 1)[-1],
                        f"{response.headers.get('content-encoding', 'identity')}, "
                        f"cache-control {response.headers.get('cache-control', '-')}",
                    )

            page.on("response", note_static)
            for label in ("empty browser cache, metadata not cached", "static files and metadata cached"):
                page.goto(viewer, wait_until="commit")
                first, interactive = page.evaluate(FIRST_IMAGE)
                print(
                    f"first image ({label}): {first:.0f} ms after navigation start; "
                    f"full viewer (tools, scrolling) ready at {interactive:.0f} ms"
                )
                print("  " + "; ".join(page.evaluate(RESOURCES, first)))
            for name, served in sorted(static_headers.items()):
                print(f"  served {name}: {served}")
            page.wait_for_selector("[data-sr-viewer][data-stack=complete]", timeout=60_000)
            steps = args.slices - 1
            print("scroll down right after opening (frames fetched as it goes): " + _scroll(page, steps, 1))
            print("scroll back up (frames in the viewer's cache): " + _scroll(page, steps, -1))
            browser.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
