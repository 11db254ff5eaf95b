"""Hostile and broken files: each gets a clear message, nothing of it is half-stored, and what
was already accepted (or sent beside it) is kept."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from imaging.ingest import messages
from imaging.ingest.pipeline import upload_ingest_run
from imaging.ingest.unpack import ArchiveLimits
from imaging.models import FileProblem, Instance, Upload
from imaging.tests.fixtures.ingest import (
    PROGRAM,
    case_make,
    length_beyond_file,
    nested_sequences,
    sample,
    stored_images,
    upload_make,
    with_preamble,
    zip_bytes,
)
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def _ingest(case: Case, data: bytes, path: str = "IM000001", **kwargs: Any) -> Upload:
    upload = upload_make(case, data, path=path)
    upload_ingest_run(upload_id=upload.pk, **kwargs)
    upload.refresh_from_db()
    return upload


def _stored_images(case: Case) -> int:
    return len(stored_images(case))


def _problems(case: Case) -> list[tuple[str, str, str]]:
    return list(FileProblem.objects.filter(case=case).values_list("code", "message", "path"))


GOOD = ("GOOD/IM1", sample("CT_small.dcm"))


def test_it_skips_zip_entries_that_climb_out_or_are_absolute(case: Case) -> None:
    data = zip_bytes(
        [("../../etc/evil", b"x" * 200), ("/etc/passwd", b"y" * 200), ("C:/boot.ini", b"z"), GOOD]
    )
    upload = _ingest(case, data, path="cd.zip")
    assert upload.status == Upload.Status.DONE
    assert sorted(_problems(case)) == sorted(
        [
            ("unsafe_archive", messages.UNSAFE_ENTRY, "../../etc/evil"),
            ("unsafe_archive", messages.UNSAFE_ENTRY, "/etc/passwd"),
            ("unsafe_archive", messages.UNSAFE_ENTRY, "C:/boot.ini"),
        ]
    )
    assert _stored_images(case) == 1  # the good one, under an opaque key


def test_it_skips_symlinks_in_a_zip(case: Case) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        link = zipfile.ZipInfo("DICOM/IM2")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr(*GOOD)
    _ingest(case, out.getvalue(), path="cd.zip")
    assert _problems(case) == [("unsafe_archive", messages.UNSAFE_ENTRY, "DICOM/IM2")]
    assert _stored_images(case) == 1


def test_it_refuses_a_zip_bomb_before_unpacking_anything(case: Case) -> None:
    data = zip_bytes([GOOD, ("BOMB", b"\x00" * (64 * 1024 * 1024))])
    assert len(data) < 200_000  # 64 MB of zeros packs to ~64 KB
    upload = _ingest(case, data, path="cd.zip")
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("unsafe_archive", messages.ARCHIVE_BOMB, "")]
    assert _stored_images(case) == 0


def test_it_skips_one_bomb_entry_in_an_otherwise_normal_zip(case: Case) -> None:
    # The whole archive's ratio is fine (it is mostly incompressible noise), one entry is not.
    import os

    noise = os.urandom(3 * 1024 * 1024)
    data = zip_bytes([GOOD, ("NOISE", noise), ("BOMB", b"\x00" * (4 * 1024 * 1024))])
    _ingest(case, data, path="cd.zip")
    problems = _problems(case)
    assert ("unsafe_archive", messages.ARCHIVE_ENTRY_BOMB, "BOMB") in problems
    assert _stored_images(case) == 1


def test_it_does_not_open_a_zip_inside_the_zip(case: Case) -> None:
    inner = zip_bytes([("IM9", sample("MR_small.dcm"))])
    _ingest(case, zip_bytes([("inner.zip", inner), GOOD]), path="cd.zip")
    assert _problems(case) == [("unsafe_archive", messages.NESTED_ARCHIVE, "inner.zip")]
    assert Instance.objects.filter(series__study__case=case).count() == 1


def test_it_refuses_a_zip_of_too_many_tiny_files(case: Case) -> None:
    limits = ArchiveLimits(max_entries=2_000)
    data = zip_bytes([(f"F{n:05d}", b"x") for n in range(2_001)], compression=zipfile.ZIP_STORED)
    upload = _ingest(case, data, path="many.zip", limits=limits)
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("archive_limit", messages.ARCHIVE_TOO_MANY_FILES.format(limit=2_000), "")]
    assert FileProblem.objects.filter(case=case).count() == 1  # one message, not 2,001


def test_it_refuses_a_zip_of_thousands_of_tiny_files_at_the_default_limit(case: Case) -> None:
    data = zip_bytes([(f"F{n:05d}", b"") for n in range(20_001)], compression=zipfile.ZIP_STORED)
    upload = _ingest(case, data, path="many.zip")
    assert upload.status == Upload.Status.FAILED
    assert _problems(case)[0][0] == "archive_limit"


def test_it_sets_aside_a_zero_byte_file(case: Case) -> None:
    upload = _ingest(case, b"", path="DICOM/IM0")
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("empty", messages.EMPTY_FILE, "DICOM/IM0")]


def test_it_sets_aside_a_truncated_dicom_file(case: Case) -> None:
    upload = _ingest(case, sample("CT_small.dcm")[:20_000])
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("truncated", messages.TRUNCATED, "IM000001")]
    assert _stored_images(case) == 0


def test_it_sets_aside_pydicoms_own_truncated_file(case: Case) -> None:
    _ingest(case, sample("MR_truncated.dcm"))
    assert _problems(case)[0][:2] == ("truncated", messages.TRUNCATED)


def test_it_sets_aside_a_file_cut_inside_its_header(case: Case) -> None:
    _ingest(case, sample("CT_small.dcm")[:3_000])
    assert _problems(case)[0][:2] == ("truncated", messages.TRUNCATED)


def test_it_sets_aside_a_file_without_dicm(case: Case) -> None:
    # A real DICOM data set without the Part 10 header ("DICM"): not a file we accept.
    upload = _ingest(case, sample("no_meta.dcm"))
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("not_dicom", messages.NOT_DICOM, "IM000001")]


def test_it_clears_an_executable_in_the_preamble_and_keeps_the_image(case: Case) -> None:
    original = sample("CT_small.dcm")
    upload = _ingest(case, with_preamble(original, PROGRAM[:128]))
    assert upload.status == Upload.Status.DONE
    assert _problems(case) == [("preamble_cleared", messages.PREAMBLE_CLEARED, "IM000001")]
    instance = Instance.objects.get(series__study__case=case)
    assert instance.preamble_cleared
    stored = tenant_storage().read_bytes(instance.storage_key)
    assert stored[:128] == b"\x00" * 128
    assert stored[128:] == original[128:]


def test_it_keeps_a_tiff_preamble(case: Case) -> None:
    _ingest(case, with_preamble(sample("CT_small.dcm"), b"II*\x00\x08\x00\x00\x00"))
    assert _problems(case) == []
    assert not Instance.objects.get(series__study__case=case).preamble_cleared


def test_it_survives_sequences_nested_hundreds_deep(case: Case) -> None:
    hostile = nested_sequences(sample("CT_small.dcm"), 500)
    data = zip_bytes([("DEEP", hostile), GOOD])
    upload = _ingest(case, data, path="cd.zip")
    assert upload.status == Upload.Status.DONE
    assert _problems(case) == [("unreadable", messages.TOO_DEEPLY_NESTED, "DEEP")]
    assert _stored_images(case) == 1


def test_it_sets_aside_a_length_field_larger_than_the_file(case: Case) -> None:
    upload = _ingest(case, length_beyond_file(sample("CT_small.dcm")))
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("truncated", messages.TRUNCATED, "IM000001")]
    assert _stored_images(case) == 0


def test_it_refuses_a_dcm_that_is_really_a_program(case: Case) -> None:
    upload = _ingest(case, PROGRAM * 10, path="DICOM/IM00001.dcm")
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("skipped_program", messages.PROGRAM_NOT_IMAGE, "DICOM/IM00001.dcm")]
    assert _stored_images(case) == 0


def test_it_keeps_what_was_accepted_before_a_bad_upload(case: Case) -> None:
    _ingest(case, sample("CT_small.dcm"))
    _ingest(case, sample("CT_small.dcm")[:5_000], path="IM2")
    assert Instance.objects.filter(series__study__case=case).count() == 1
    assert _stored_images(case) == 1


def test_it_refuses_a_damaged_zip(case: Case) -> None:
    data = zip_bytes([GOOD])
    upload = _ingest(case, data[: len(data) // 2], path="cd.zip")
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("unreadable", messages.ARCHIVE_DAMAGED, "")]
