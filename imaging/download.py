"""A case's original image files as one zip, streamed: memory stays bounded by one read buffer
whatever the size of the case (a DVD is ~5 GB), and nothing is written to disk.

The zip is written by :mod:`zipfile` into a sink that the generator empties after every piece;
entries are stored (DICOM hardly compresses, and the bytes are the originals, unchanged) with
ZIP64 so that a file or archive past 4 GB is fine. Names inside the zip hold no patient data:
``STUDY01_CT_20040119/SERIES01_CT/IM00001.dcm``.

Precondition: the caller checked that the requester may see ``case`` and audited the download.
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

from imaging.cases import CaseRow
from imaging.instance_files import instance_file_open
from imaging.models import Instance, Study
from storage.tenant import tenant_storage

READ_BYTES = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")


class _Sink(io.RawIOBase):
    """Where zipfile writes; the generator takes what was written after each piece."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces.clear()
        return data


def _part(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-")[:16]


def case_originals_names(*, case: CaseRow) -> Iterator[tuple[str, Instance]]:
    """(name in the zip, instance) for every instance of the case's included studies."""
    studies = Study.objects.included().filter(case=case).order_by("study_date", "id")
    for study_number, study in enumerate(studies, start=1):
        day = study.study_date.strftime("%Y%m%d") if study.study_date else "nodate"
        study_dir = f"STUDY{study_number:02d}_{_part(study.modalities) or 'IMAGES'}_{day}"
        for series_number, series in enumerate(study.series.order_by("series_number", "id"), start=1):
            series_dir = f"SERIES{series_number:02d}_{_part(series.modality) or 'IMAGES'}"
            instances = series.instances.order_by("instance_number", "id").only(
                "series", "storage_key", "storage_offset", "size", "instance_number"
            )
            for image_number, instance in enumerate(instances.iterator(), start=1):
                yield f"{study_dir}/{series_dir}/IM{image_number:05d}.dcm", instance


def zip_stream(
    files: Iterable[tuple[str, Callable[[], AbstractContextManager[BinaryIO]]]],
) -> Iterator[bytes]:
    """A stored ZIP64 archive of ``files`` ((name, opener) pairs), piece by piece: at most one
    :data:`READ_BYTES` read is held at a time."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, opener in files:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with opener() as source, archive.open(info, "w", force_zip64=True) as out:
                while chunk := source.read(READ_BYTES):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def case_originals_zip(*, case: CaseRow) -> Iterator[bytes]:
    """The zip's bytes, piece by piece (see the module's docstring)."""
    storage = tenant_storage()
    return zip_stream(
        (name, functools.partial(instance_file_open, instance, storage))
        for name, instance in case_originals_names(case=case)
    )
