"""Frames and headers read through the pixel index (ranged reads) are byte for byte what reading
the whole file gives, for every way a file can lay out its frames; the index made at ingest is
the one made later for files stored before indexes existed."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, get_frame
from pydicom.uid import generate_uid

from imaging.dicomweb.frames import (
    FRAME_OUT_OF_RANGE,
    NO_PIXEL_DATA,
    FrameError,
    StoredFile,
    frame_decoded,
    frame_rendered,
    frame_stored,
)
from imaging.ingest.dicom import header_read
from imaging.models import Instance
from imaging.pixel_index import pixel_index_read
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.dicomweb_cases import SeriesFiles, case_with_study


def _testdata(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None
    return pydicom.dcmread(path)


def _jpeg_frames(count: int) -> tuple[Dataset, list[bytes]]:
    ds = _testdata("color3d_jpeg_baseline.dcm")
    frames = [get_frame(ds.PixelData, i, number_of_frames=120) for i in range(count)]
    ds.NumberOfFrames = count
    return ds, frames


def _jpeg_multifragment(*, bot: bool) -> Dataset:
    """Frames split into 3 fragments each: found by their end-of-image markers (no offset
    table), or by the basic offset table."""
    ds, frames = _jpeg_frames(4)
    ds.PixelData = encapsulate(frames, fragments_per_frame=3, has_bot=bot)
    return ds


def _jpeg_extended() -> Dataset:
    ds, frames = _jpeg_frames(3)
    ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(frames)
    return ds


def _jpeg_one_frame_in_fragments() -> Dataset:
    ds, frames = _jpeg_frames(1)
    ds.PixelData = encapsulate(frames, fragments_per_frame=4, has_bot=False)
    del ds.NumberOfFrames
    return ds


LAYOUTS = {
    "native multi-frame (Explicit VR)": lambda: _testdata("emri_small.dcm"),
    "native (Implicit VR)": lambda: _testdata("MR_small_implicit.dcm"),
    "native YBR_FULL_422": lambda: _testdata("SC_ybr_full_422_uncompressed.dcm"),
    "native, odd size": lambda: _testdata("SC_rgb_small_odd.dcm"),
    "RLE, basic offset table": lambda: _testdata("emri_small_RLE.dcm"),
    "RLE colour, 2 frames": lambda: _testdata("SC_rgb_rle_2frame.dcm"),
    "JPEG baseline, 120 frames": lambda: _testdata("color3d_jpeg_baseline.dcm"),
    "JPEG 2000 multi-frame": lambda: _testdata("emri_small_jpeg_2k_lossless.dcm"),
    "JPEG, fragments split by end-of-image markers": lambda: _jpeg_multifragment(bot=False),
    "JPEG, fragments split by the basic offset table": lambda: _jpeg_multifragment(bot=True),
    "JPEG, extended offset table": _jpeg_extended,
    "JPEG, one frame in 4 fragments": _jpeg_one_frame_in_fragments,
    "Big Endian (not indexed)": lambda: _testdata("MR_small_bigendian.dcm"),
}
# Read whole, and only its header: frames of a deflated file are not served (before indexes
# neither; pydicom cannot find its pixel data in the compressed stream).
DEFLATED = "image_dfl.dcm"


def _stored(neuro: Institution, datasets: list[Dataset]) -> Case:
    for ds in datasets:
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.7"
        ds.SeriesInstanceUID = generate_uid()
        ds.SeriesNumber = ds.InstanceNumber = 1
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.Modality = ds.get("Modality", "OT")
    return case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=[SeriesFiles(str(position), [ds]) for position, ds in enumerate(datasets)],
    )


def _unindexed(instance: Instance) -> StoredFile:
    """The file read whole, as before indexes (the index is set aside, not saved)."""
    copy = Instance.objects.get(pk=instance.pk)
    copy.header_length = 0
    return StoredFile(copy)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_it_reads_every_frame_as_reading_the_whole_file_did(neuro: Institution, layout: str) -> None:
    ds = LAYOUTS[layout]()
    case = _stored(neuro, [ds])
    with schema_context("neuro"):
        instance = Instance.objects.get(series__study__case=case)
        assert instance.header_length is None  # stored before indexes: made on first read
        stored = StoredFile(instance)
        row = Instance.objects.get(pk=instance.pk)
        assert row.header_length is not None
        indexed = "not indexed" not in layout
        assert bool(stored.spans) is indexed
        whole = _unindexed(instance)
        assert stored.header() == whole.header()
        count = int(ds.get("NumberOfFrames") or 1)
        for number in range(1, count + 1):
            assert frame_stored(stored, number) == frame_stored(whole, number), number
            decoded = frame_decoded(stored, number)
            assert decoded == frame_decoded(whole, number), number
        for beyond in (0, count + 1):
            with pytest.raises(FrameError, match=FRAME_OUT_OF_RANGE):
                frame_stored(stored, beyond)
        assert frame_rendered(stored, count) == frame_rendered(whole, count)


def test_it_locates_the_frames_pydicom_locates(neuro: Institution) -> None:
    ds = _jpeg_multifragment(bot=False)
    expected = [get_frame(ds.PixelData, i, number_of_frames=4) for i in range(4)]
    case = _stored(neuro, [ds])
    with schema_context("neuro"):
        stored = StoredFile(Instance.objects.get(series__study__case=case))
        assert [frame_stored(stored, n).data for n in range(1, 5)] == expected
        pixels = np.frombuffer(frame_decoded(stored, 2).data, dtype=np.uint8)
        assert pixels.size == 480 * 640 * 3


def test_it_makes_the_same_index_at_ingest_as_later(neuro: Institution) -> None:
    for make in [*LAYOUTS.values(), lambda: _testdata(DEFLATED)]:
        ds = make()
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        size = len(out.getvalue())
        at_ingest = header_read(io.BytesIO(out.getvalue()), size).pixel_index
        assert at_ingest == pixel_index_read(io.BytesIO(out.getvalue()), size)


def test_it_reads_the_header_of_a_deflated_file_whole(neuro: Institution) -> None:
    ds = _testdata(DEFLATED)
    case = _stored(neuro, [ds])
    with schema_context("neuro"):
        stored = StoredFile(Instance.objects.get(series__study__case=case))
        assert Instance.objects.get(series__study__case=case).header_length == 0  # never ranged
        assert stored.header().SOPInstanceUID == ds.SOPInstanceUID


def test_it_says_an_instance_without_pixels_has_no_image(neuro: Institution) -> None:
    ds = _testdata("MR_small_implicit.dcm")
    del ds.PixelData
    case = _stored(neuro, [ds])
    with schema_context("neuro"):
        stored = StoredFile(Instance.objects.get(series__study__case=case))
        assert stored.header().SOPInstanceUID == ds.SOPInstanceUID
        with pytest.raises(FrameError, match=NO_PIXEL_DATA):
            frame_stored(stored, 1)


def test_it_reads_the_header_in_one_range(neuro: Institution, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _testdata("emri_small.dcm")
    case = _stored(neuro, [ds])
    with schema_context("neuro"):
        instance = Instance.objects.get(series__study__case=case)
        StoredFile(instance)  # indexed
        storage = type(tenant_storage())
        reads: list[tuple[int, int]] = []
        original = storage.read_range

        def counting(self: object, key: str, offset: int, length: int) -> bytes:
            reads.append((offset, length))
            return original(self, key, offset, length)  # type: ignore[arg-type]

        monkeypatch.setattr(storage, "read_range", counting)
        monkeypatch.setattr(storage, "open", None)  # a whole read would fail
        stored = StoredFile(Instance.objects.get(pk=instance.pk))
        assert stored.header().Rows == 64
        assert frame_stored(stored, 3).data == ds.pixel_array[2].astype("<u2").tobytes()
        assert reads == [
            (0, instance.header_length),
            ((instance.pixel_data_offset or 0) + 2 * 64 * 64 * 2, 64 * 64 * 2),
        ]
