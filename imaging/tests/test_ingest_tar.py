"""Tar batches (how the browser sends a folder drop): every image in one is stored as it was
sent, and a tar someone made by hand to hurt us gets the same clear messages as a bad zip, with
nothing of a refused one stored."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from imaging.ingest import messages
from imaging.ingest.pipeline import upload_ingest_run
from imaging.ingest.unpack import ArchiveLimits
from imaging.models import FileProblem, Instance, Upload
from imaging.tests.fixtures.ingest import (
    case_make,
    dicom_renamed,
    sample,
    stored_images,
    tar_bytes,
    upload_make,
    zip_bytes,
)
from intake.models import Case
from tenants.models import Institution


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def _ingest(case: Case, data: bytes, **kwargs: Any) -> Upload:
    upload = upload_make(case, data, path="batch-0001.tar", metadata={"batchFiles": "3"})
    upload_ingest_run(upload_id=upload.pk, **kwargs)
    upload.refresh_from_db()
    return upload


def _problems(case: Case) -> list[tuple[str, str, str]]:
    return sorted(FileProblem.objects.filter(case=case).values_list("code", "message", "path"))


def _stored_images(case: Case) -> int:
    return len(stored_images(case))


LONG_FOLDER = "Resonancia magnética de la señora Núñez — estudio completo del 3 de marzo/" * 2


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_every_image_of_a_tar_is_stored_byte_for_byte(case: Case, fmt: int) -> None:
    images = [
        ("DICOM/IM1", dicom_renamed("CT_small.dcm", SOPInstanceUID="1.2.3.1")),
        ("DICOM/IM2", dicom_renamed("CT_small.dcm", SOPInstanceUID="1.2.3.2")),
        ("DICOM/IM3", dicom_renamed("CT_small.dcm", InstanceNumber=3)),
    ]
    upload = _ingest(case, tar_bytes(images, fmt))
    assert upload.status == Upload.Status.DONE
    assert _problems(case) == []
    stored = stored_images(case)
    assert len(stored) == 3
    assert stored["1.2.3.1"] == images[0][1]
    assert stored["1.2.3.2"] == images[1][1]
    assert sorted(map(len, stored.values())) == sorted(len(data) for _, data in images)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_a_long_name_in_any_language_names_its_files_problem(case: Case, fmt: int) -> None:
    name = LONG_FOLDER + "ROTO"
    assert len(name.encode()) > 100  # beyond what a plain tar header holds
    _ingest(
        case,
        tar_bytes([(name, b"\x00" * 128 + b"DICM" + b"\xff" * 600), ("IM1", sample("CT_small.dcm"))], fmt),
    )
    assert [path for _, _, path in _problems(case)] == [name]
    assert _stored_images(case) == 1


def test_links_devices_and_names_that_climb_out_are_skipped(case: Case) -> None:
    link = tarfile.TarInfo("DICOM/IM2")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    hard = tarfile.TarInfo("DICOM/IM3")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "DICOM/IM1"
    device = tarfile.TarInfo("DICOM/IM4")
    device.type = tarfile.CHRTYPE
    folder = tarfile.TarInfo("DICOM")
    folder.type = tarfile.DIRTYPE
    upload = _ingest(
        case,
        tar_bytes(
            [
                folder,
                ("DICOM/IM1", sample("CT_small.dcm")),
                link,
                hard,
                device,
                ("../../etc/evil", b"x" * 200),
            ]
        ),
    )
    assert upload.status == Upload.Status.DONE
    assert _problems(case) == sorted(
        ("unsafe_archive", messages.UNSAFE_ENTRY, path)
        for path in ["DICOM/IM2", "DICOM/IM3", "DICOM/IM4", "../../etc/evil"]
    )
    assert _stored_images(case) == 1


def test_an_archive_inside_the_tar_is_not_opened(case: Case) -> None:
    inner = zip_bytes([("IM1", sample("CT_small.dcm"))])
    _ingest(
        case, tar_bytes([("inner.zip", inner), ("inner.tar", tar_bytes([("IM1", sample("CT_small.dcm"))]))])
    )
    assert _problems(case) == [
        ("unsafe_archive", messages.NESTED_ARCHIVE, "inner.tar"),
        ("unsafe_archive", messages.NESTED_ARCHIVE, "inner.zip"),
    ]
    assert _stored_images(case) == 0


def _damaged(data: bytes) -> bytes:
    # The second file's header (after the first's, and its bytes in whole blocks) has its name
    # changed: the header's checksum no longer matches.
    second = 512 + -(-len(sample("CT_small.dcm")) // 512) * 512
    return data[:second] + b"EVL" + data[second + 3 :]


def _cut_short(data: bytes) -> bytes:
    return data[: 512 + 100]  # the first file's header, and part of its bytes


def _header_too_long(data: bytes) -> bytes:
    huge = tarfile.TarInfo("IM0")
    huge.pax_headers = {"comment": "x" * (70 * 1024)}
    return tar_bytes([huge])[:-1024] + data


@pytest.mark.parametrize("spoil", [_damaged, _cut_short, _header_too_long])
def test_a_damaged_tar_stores_nothing_and_says_so(case: Case, spoil: Any) -> None:
    good = tar_bytes([("IM1", sample("CT_small.dcm")), ("IM2", dicom_renamed("CT_small.dcm"))])
    upload = _ingest(case, spoil(good))
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("unreadable", messages.ARCHIVE_DAMAGED, "")]
    assert _stored_images(case) == 0
    assert Instance.objects.filter(series__study__case=case).count() == 0


def test_the_archive_limits_hold_for_a_tar(case: Case) -> None:
    members = [(f"IM{number}", sample("CT_small.dcm")) for number in range(3)]
    upload = _ingest(case, tar_bytes(members), limits=ArchiveLimits(max_entries=2))
    assert upload.status == Upload.Status.FAILED
    assert _problems(case) == [("archive_limit", messages.ARCHIVE_TOO_MANY_FILES.format(limit=2), "")]
    upload = _ingest(case, tar_bytes(members), limits=ArchiveLimits(max_total_bytes=1000))
    assert upload.status == Upload.Status.FAILED
    assert _stored_images(case) == 0
