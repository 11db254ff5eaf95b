"""A zip the patient chooses is sent in parts, its entries sliced out as they are, so that the
server checks the first parts while the rest are on their way; the disc's index goes on its own.
Every part is still checked as any zip is: an entry whose bytes do not match the checksum the
patient's zip tool wrote (a byte changed on the way) is refused and named, the others kept."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from imaging.models import FileProblem, Instance, Upload
from intake.models import Case
from tests.browser.patient import images_step_open
from tests.live import LiveServer

pytestmark = pytest.mark.browser

# ~39 KB each: 5 MB in all, more than the first two parts (2 MiB, then 4 MiB) hold.
IMAGES = 130
BROKEN = 7  # the image whose bytes are changed inside the zip


def cd_zip(root: Path) -> tuple[Path, str]:
    """A zip of a CD written by pydicom's FileSet (DICOMDIR deflated, images stored), with one
    byte of one image's pixels changed after the zip was written; and that image's path."""
    staging, cd = root / "staging", root / "CD"
    staging.mkdir()
    template = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    template.SeriesInstanceUID = generate_uid()
    fileset = FileSet()
    for number in range(IMAGES):
        template.SOPInstanceUID = generate_uid()
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        template.InstanceNumber = number + 1
        path = staging / f"IM{number:04d}"
        template.save_as(path, enforce_file_format=True)
        fileset.add(path)
    fileset.write(cd)
    target = root / "disc.zip"
    images = sorted(p for p in cd.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    with zipfile.ZipFile(target, "w") as archive:
        # The index and a folder's entry in the middle: parts skip them, so the images around
        # them are not one stretch of the zip.
        for number, path in enumerate(images):
            if number == len(images) // 2:
                archive.write(cd / "DICOMDIR", "DICOMDIR", compress_type=zipfile.ZIP_DEFLATED)
                archive.writestr(zipfile.ZipInfo("EMPTY/"), b"")
            archive.write(path, str(path.relative_to(cd)), compress_type=zipfile.ZIP_STORED)
    broken = str(images[BROKEN].relative_to(cd))
    with zipfile.ZipFile(target) as archive:
        info = archive.getinfo(broken)
    data = bytearray(target.read_bytes())
    # The local header is 30 bytes, the name and extra field follow; the last byte is a pixel.
    with open(target, "rb") as stream:
        stream.seek(info.header_offset + 26)
        name_length = int.from_bytes(stream.read(2), "little")
        extra_length = int.from_bytes(stream.read(2), "little")
    last = info.header_offset + 30 + name_length + extra_length + info.compress_size - 1
    data[last] ^= 0xFF
    target.write_bytes(bytes(data))
    return target, broken


def test_a_zip_goes_in_parts_and_an_entry_changed_on_the_way_is_refused(
    live_platform: LiveServer,
    celery_worker_process: Any,
    page: Any,
    tmp_path: Path,
    committed_case: Case,
    django_db_blocker: Any,
) -> None:
    archive, broken = cd_zip(tmp_path)
    errors = images_step_open(page, live_platform, committed_case)

    page.set_input_files("#files-input", str(archive))
    page.locator("[data-start-upload]").click()
    page.get_by_text("1 file sent.").wait_for(timeout=60_000)
    page.wait_for_function(
        "text => document.querySelector('[data-testid=received-summary]')?.textContent.includes(text)",
        arg=f"1 study, 1 series, {IMAGES - 1} images.",
        timeout=90_000,
    )
    assert errors == []
    # The changed image is named among the problems, in the words the patient reads.
    problems = page.locator("details.problems").evaluate_all("groups => groups.map((g) => g.textContent)")
    assert any(broken.split("/")[-1] in text for text in problems), problems

    with django_db_blocker.unblock(), schema_context("neuro"):
        uploads = list(Upload.objects.filter(case=committed_case).order_by("id"))
        stored = Instance.objects.filter(series__study__case=committed_case).count()
        refused = list(FileProblem.objects.filter(case=committed_case).values_list("path", "code"))
    assert stored == IMAGES - 1
    assert (broken, FileProblem.Code.UNREADABLE) in refused
    # The index on its own (its listing kept, as from a folder), the images in several parts.
    index = [upload for upload in uploads if upload.relative_path.endswith("/DICOMDIR")]
    parts = [upload for upload in uploads if upload.metadata.get("batchFiles")]
    assert len(index) == 1 and index[0].metadata.get("discIndex")
    assert len(parts) >= 2
    assert sum(int(upload.metadata["batchFiles"]) for upload in parts) == IMAGES
    assert all(upload.status in (Upload.Status.DONE, Upload.Status.FAILED) for upload in uploads)
