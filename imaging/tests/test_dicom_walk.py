"""The header walk (imaging.ingest.dicom_walk) reads ordinary files without pydicom, and for any
file it either leaves to pydicom or reads exactly as pydicom's path does: the same header, or
(for a file pydicom's path refuses) no answer, so the refusal stands."""

from __future__ import annotations

import io
import random
import tempfile
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from imaging.ingest.dicom import DicomHeader, FileKind, FileRejected, file_sniff, header_read
from imaging.ingest.dicom_walk import header_walk
from imaging.tests.fixtures.ingest import length_beyond_file, nested_sequences, sample, with_preamble


def _pydicom_path(data: bytes) -> DicomHeader | FileRejected:
    """header_read as before the walk: a stream that is not a BytesIO is read by pydicom."""
    with tempfile.TemporaryFile() as fp:
        fp.write(data)
        try:
            return header_read(fp, len(data))
        except FileRejected as rejected:
            return rejected


def _agrees(data: bytes) -> DicomHeader | None:
    """Assert the walk agrees with pydicom's path on ``data``; return what the walk read."""
    walked = header_walk(data)
    expected = _pydicom_path(data)
    if walked is not None:
        assert not isinstance(expected, FileRejected), f"pydicom's path refuses it: {expected.code}"
        assert walked == expected
    # And header_read (which tries the walk first) gives what pydicom's path gives.
    try:
        result: DicomHeader | FileRejected = header_read(io.BytesIO(data), len(data))
    except FileRejected as rejected:
        result = rejected
    if isinstance(expected, FileRejected):
        assert isinstance(result, FileRejected) and (result.code, result.message) == (
            expected.code,
            expected.message,
        )
    else:
        assert result == expected
    return walked


def _encoded(name: str, syntax: UID) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(sample(name)))
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_it_reads_an_ordinary_ct_slice_itself_explicit_and_implicit() -> None:
    # The speed of a folder drop rests on this: an ordinary file never goes to pydicom.
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        walked = _agrees(_encoded("CT_small.dcm", syntax))
        assert walked is not None
        assert walked.rows == 128 and walked.pixel_index is not None
        assert walked.pixel_index.frame_spans


def test_it_reads_pydicoms_collection_as_pydicom_does() -> None:
    walked = 0
    # The files pydicom ships (none fetched: get_testdata_files would try the network).
    files = sorted(
        path for path in (Path(pydicom.data.__file__).parent / "test_files").rglob("*") if path.is_file()
    )
    for path in files:
        data = path.read_bytes()
        if file_sniff(data[:132], path.name) is not FileKind.DICOM:
            continue
        walked += _agrees(data) is not None
    assert walked >= 20  # JPEG, RLE, multi-frame, sequences: most of them taken by the walk


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_it_leaves_every_cut_short_copy_to_pydicom_or_agrees(syntax: UID) -> None:
    data = _encoded("CT_small.dcm", syntax)
    pixel = data.rfind(b"\xe0\x7f\x10\x00")
    cuts = sorted({*range(132, pixel + 40), *range(pixel + 40, len(data), 997), len(data) - 1})
    for cut in cuts:
        assert header_walk(data[:cut]) is None or _pydicom_path(data[:cut]) == header_walk(data[:cut])
        if cut % 7 == 0 or cut > pixel - 16:
            _agrees(data[:cut])


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "emri_small_RLE.dcm"])
def test_it_agrees_on_damaged_copies(name: str) -> None:
    data = sample(name)
    pixel = data.rfind(b"\xe0\x7f\x10\x00")
    end = pixel if pixel > 0 else len(data)
    chance = random.Random(13)  # noqa: S311 (a fixed choice of damage, not a secret)
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(chance.randint(1, 3)):
            damaged[chance.randrange(132, end)] = chance.randrange(256)
        _agrees(bytes(damaged))


def test_it_leaves_hostile_files_to_pydicom() -> None:
    ct = sample("CT_small.dcm")
    for hostile in (nested_sequences(ct, 400), length_beyond_file(ct)):
        assert header_walk(hostile) is None
        _agrees(hostile)
    # A program in the preamble: read here, and said so.
    walked = _agrees(with_preamble(ct, b"MZ" + b"\x90" * 126))
    assert walked is not None and walked.preamble_suspicious


def test_it_leaves_other_character_sets_and_several_values_to_pydicom() -> None:
    ds = pydicom.dcmread(io.BytesIO(sample("CT_small.dcm")))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Zoë"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    walked = _agrees(out.getvalue())
    assert walked is not None and walked.patient_name == "Müller^Zoë"
    ds.SpecificCharacterSet = "ISO 2022 IR 87"
    ds.PatientName = "Muller^Zoe"
    ds.StudyDescription = ["one", "two"]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    assert header_walk(out.getvalue()) is None
    _agrees(out.getvalue())
