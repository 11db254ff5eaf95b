"""A CD's folder is sent in a few batches, not one request per file: Chromium packs the images
into uncompressed tars (made of the files themselves, frontend/src/intake/tarbatch.js: standard
ones, which Python's tarfile reads too) and the real worker checks them as it checks any archive,
with every file's problem still named (a long name in any language included), a copy of an image
recognised, and the counts going up."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from imaging.models import Instance, Upload
from intake.models import Case
from storage.tenant import tenant_storage
from tests.browser.patient import images_step_open
from tests.live import LiveServer

pytestmark = pytest.mark.browser

IMAGES = 40
LONG_HEADER = 5  # this image's header is longer than the 16 KB the scan reads of each file
# Longer than a plain tar header holds (100 bytes), and not ASCII.
LONG_FOLDER = "Resonancia magnética — señora Núñez, estudio completo del 3 de marzo de 2026 (copia)"


def disc(root: Path) -> Path:
    """40 slices of one series, one slice copied again into another folder, and a file that
    says it is DICOM but is broken."""
    folder = root / "CD"
    series = folder / "DICOM" / "SE1"
    series.mkdir(parents=True)
    template = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    template.SeriesInstanceUID = generate_uid()
    for number in range(IMAGES):
        template.SOPInstanceUID = generate_uid()
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        template.InstanceNumber = number + 1
        if number == LONG_HEADER:  # more header than the scan reads at first: it reads more
            template.add_new(0x00090010, "LO", "BENCH")
            template.add_new(0x00091010, "OB", b"\x01" * 40_000)
        elif (0x0009, 0x1010) in template:
            del template[0x00091010], template[0x00090010]
        template.save_as(series / f"IM{number:04d}", enforce_file_format=True)
    (folder / "COPY").mkdir()
    shutil.copy(series / "IM0000", folder / "COPY" / "IM0000")
    (folder / LONG_FOLDER).mkdir()
    (folder / LONG_FOLDER / "ROTO").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 600)
    return folder


def test_it_sends_a_folder_in_batches_and_still_names_each_files_problem(
    live_platform: LiveServer,
    celery_worker_process: Any,
    page: Any,
    tmp_path: Path,
    committed_case: Case,
    django_db_blocker: Any,
) -> None:
    errors = images_step_open(page, live_platform, committed_case)
    assert errors == []

    folder = disc(tmp_path)
    page.set_input_files("#folder-input", str(folder))
    page.get_by_test_id("scan-summary").wait_for()
    # The copy is counted once, as the server will store it once.
    assert page.get_by_test_id("scan-summary").inner_text() == f"We found 1 study with {IMAGES + 2} images."
    # Every image's header was read here (the long one too); only the broken file was not.
    assert f"· {IMAGES} images" in page.get_by_test_id("scan-studies").inner_text()
    assert page.locator("p", has_text="could not be read here").inner_text().startswith("1 image file ")
    page.get_by_role("button", name=f"Send {IMAGES + 2} files").click()
    page.get_by_text(f"All {IMAGES + 2} files sent.").wait_for(timeout=60_000)

    page.wait_for_function(
        "text => document.querySelector('[data-testid=received-summary]')?.textContent.trim() === text",
        arg=f"{IMAGES + 2} image files received. 1 study, 1 series, {IMAGES} images.",
        timeout=90_000,
    )
    # Each file's problem still carries its own name, though it travelled inside a batch.
    # (textContent: the duplicate's group is folded, and inner text skips what is not shown)
    problems = page.locator("details.problems").evaluate_all("groups => groups.map((g) => g.textContent)")
    assert any(f"{LONG_FOLDER}/ROTO" in text for text in problems), problems
    assert any(re.search(r"IM0000\b", text) for text in problems), problems

    with django_db_blocker.unblock(), schema_context("neuro"):
        uploads = list(Upload.objects.filter(case=committed_case))
        stored = Instance.objects.filter(series__study__case=committed_case).count()
    assert stored == IMAGES
    # A few requests for the whole folder: one batch (all are small), not one upload per file.
    assert len(uploads) == 1
    assert uploads[0].metadata["batchFiles"] == str(IMAGES + 2)
    assert uploads[0].status == Upload.Status.DONE
    # The batch is a standard tar: kept (a file in it could not be taken), and read back by
    # Python's own tarfile, every file's name and bytes are the patient's.
    with django_db_blocker.unblock(), schema_context("neuro"):
        batch = tenant_storage().open(uploads[0].storage_key)
    with batch, tarfile.open(fileobj=batch, mode="r:") as archive:
        sent = {member.name: archive.extractfile(member).read() for member in archive}  # type: ignore[union-attr]
    on_disc = {
        "CD/" + str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }
    assert sent == on_disc


def test_a_folder_of_more_files_than_one_read_is_scanned_whole(
    live_platform: LiveServer, page: Any, tmp_path: Path, committed_case: Case
) -> None:
    """The scan reads files' headers 256 at a time, the next group while this one is parsed:
    every group is counted, the last partial one too, and a file that is not an image among
    them is still told apart."""
    series = tmp_path / "CD" / "DICOM"
    series.mkdir(parents=True)
    template = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    count = 2 * 256 + 17
    for number in range(count):
        template.SOPInstanceUID = generate_uid()
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        template.save_as(series / f"IM{number:04d}", enforce_file_format=True)
    (series / "IM0300").write_bytes(b"not an image at all" * 10)  # replaces one, in the 2nd group
    images_step_open(page, live_platform, committed_case)

    page.set_input_files("#folder-input", str(tmp_path / "CD"))

    page.get_by_test_id("scan-summary").wait_for()
    assert page.get_by_test_id("scan-summary").inner_text() == f"We found 1 study with {count - 1} images."
    page.get_by_role("button", name=f"Send {count - 1} files").wait_for()
