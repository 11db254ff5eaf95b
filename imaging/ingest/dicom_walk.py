"""The common DICOM header read without pydicom: a walk over the elements' tags and lengths that
keeps the few values we store, for a worker that ingests hundreds of files a second.

pydicom builds an object per element (a CT slice has 250) and then converts the values we ask
for: about 0.6 ms a file, most of a worker's CPU in a folder drop. This walk checks the same
things :func:`imaging.ingest.dicom.header_read` checks (every element, sequences included, lies
within the file; the pixel data too; the last element ends where the next begins) and reads
only the values we keep. It is a fast path, not a second parser: whenever a file is anything
but ordinary (big endian, deflated, a character set other than ASCII, Latin-1 or UTF-8, an
element out of order or repeated, a VR that does not match the dictionary's for a value we
keep, a value with several parts, a DICOMDIR, anything cut short or malformed, an identifier
we would refuse), it answers None and the caller parses the file with pydicom as before, whose
verdict on odd files stands. So a file is refused, or kept with these values, exactly as
before; a test compares both on pydicom's own collection of odd files and on cut and damaged
copies of ordinary ones.
"""

# long module: one walk over a header and the readers of the values it keeps, each mirroring a
# check or a conversion of dicom.py; split, the pairs would no longer be read side by side.

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable

from pydicom.datadict import dictionary_VR
from pydicom.uid import UID

from imaging.ingest.dicom import (
    DEFER_SIZE,
    DicomHeader,
    FileRejected,
    ascii_float,
    ascii_int,
    dicom_date,
    preamble_is_suspicious,
    uid_checked,
)
from imaging.pixel_index import FrameLayout, pixel_index_of

PREAMBLE = 128
UNDEFINED_LENGTH = 0xFFFFFFFF
# Nested sequences deeper than this go to pydicom (which refuses the absurd ones in its way).
MAX_DEPTH = 16
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_SHORT_VRS = frozenset(
    {
        *(b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO"),
        *(b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"),
    }
)
_PIXEL_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"})
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_TAG = struct.Struct("<HH").unpack_from
_TAG_LENGTH = struct.Struct("<HHL").unpack_from
_TAG_VR_LENGTH = struct.Struct("<HH2sH").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<L").unpack_from

# The file meta elements we keep.
_TRANSFER_SYNTAX = 0x00020010
_MEDIA_CLASS = 0x00020002
_MEDIA_INSTANCE = 0x00020003
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"

# The dataset's elements we keep: ASCII-only values read as they are (as dicom.py's _ascii).
_ASCII = {
    "SOPInstanceUID": 0x00080018,
    "SOPClassUID": 0x00080016,
    "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E,
    "StudyDate": 0x00080020,
    "SeriesDate": 0x00080021,
    "StudyTime": 0x00080030,
    "PatientBirthDate": 0x00100030,
    "PatientSex": 0x00100040,
    "Modality": 0x00080060,
    "BodyPartExamined": 0x00180015,
    "SeriesNumber": 0x00200011,
    "InstanceNumber": 0x00200013,
    "NumberOfFrames": 0x00280008,
    "SliceLocation": 0x00201041,
    "PhotometricInterpretation": 0x00280004,
}
# Text in the file's character set, with the VR each must have (as dicom.py's _text).
_TEXT = {
    "StudyDescription": (0x00081030, b"LO"),
    "AccessionNumber": (0x00080050, b"SH"),
    "StudyID": (0x00200010, b"SH"),
    "ReferringPhysicianName": (0x00080090, b"PN"),
    "PatientName": (0x00100010, b"PN"),
    "PatientID": (0x00100020, b"LO"),
    "SeriesDescription": (0x0008103E, b"LO"),
}
# Unsigned shorts (as dicom.py's _int).
_US = {"Rows": 0x00280010, "Columns": 0x00280011, "BitsAllocated": 0x00280100, "SamplesPerPixel": 0x00280002}
_CHARSET = 0x00080005
# Present: the frames' places need pydicom's reading of them.
_EXTENDED_OFFSETS = frozenset({0x7FE00001, 0x7FE00002})
_WANTED = frozenset(
    {*_ASCII.values(), *(tag for tag, _ in _TEXT.values()), *_US.values(), _CHARSET, *_EXTENDED_OFFSETS}
)
_VR_OF = {
    **{tag: vr for tag, vr in _TEXT.values()},
    **{tag: b"US" for tag in _US.values()},
}
# pydicom's names for the character sets we decode here ("iso8859" is its default: Latin-1).
_CODECS = {"": "iso8859", "ISO_IR 6": "iso8859", "ISO_IR 100": "latin_1", "ISO_IR 192": "UTF8"}


class _Unusual(Exception):
    """The file is not one this walk reads: pydicom reads it instead."""


@functools.lru_cache(maxsize=64)
def _syntax(uid: str) -> bool | None:
    """Whether the dataset of this transfer syntax is implicit VR; None if we leave it to pydicom
    (big endian, deflated, unknown)."""
    syntax = UID(uid)
    if not syntax.is_transfer_syntax or not syntax.is_little_endian or syntax.is_deflated:
        return None
    return bool(syntax.is_implicit_VR)


def _looks_explicit(data: bytes, pos: int) -> bool:
    """pydicom's test of an implicit dataset's first element: VR-like bytes mean explicit."""
    vr = data[pos + 4 : pos + 6]
    return len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B


def _elements(
    data: bytes,
    pos: int,
    end: int,
    *,
    implicit: bool,
    depth: int,
    found: dict[int, tuple[bytes, bytes]] | None,
    delimited: bool = False,
) -> int:
    """Walk the elements from ``pos`` to ``end``; or, ``delimited`` (an undefined-length item),
    to its delimiter, returning past it; or, at the top level (``found`` given, where the values
    we keep are put), to the pixel data, returning at its tag."""
    last_tag = -1
    top = found is not None
    # pydicom's test, made on the top-level dataset only (items are never switched).
    if top and implicit and _looks_explicit(data, pos):
        raise _Unusual
    while True:
        if pos == end:
            if delimited:
                raise _Unusual  # an undefined-length item that never ends
            return pos
        if end - pos < 8:
            raise _Unusual
        # One unpack per element (the tag, and the VR and 16-bit length or the 32-bit length).
        if implicit:
            group, element, length = _TAG_LENGTH(data, pos)
            vr = b""
            value = pos + 8
        else:
            group, element, vr, length = _TAG_VR_LENGTH(data, pos)
            value = pos + 8
        tag = group << 16 | element
        if top and tag in _PIXEL_TAGS:
            return pos
        if group == 0xFFFE:
            if delimited and element == 0xE00D:
                return pos + 8
            raise _Unusual
        if top:
            if tag <= last_tag:
                raise _Unusual  # out of order or repeated: pydicom's judgement
            last_tag = tag
        if not implicit and vr not in _SHORT_VRS:
            if vr not in _LONG_VRS or end - pos < 12:
                raise _Unusual
            (length,) = _U32(data, pos + 8)
            value = pos + 12
        if length == UNDEFINED_LENGTH:
            if top and tag in _WANTED:
                raise _Unusual
            if implicit:
                try:
                    is_sequence = dictionary_VR(tag) == "SQ"
                except KeyError:
                    is_sequence = data[value : value + 4] in (b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0")
                if not is_sequence:
                    raise _Unusual
            elif vr != b"SQ":
                raise _Unusual
            pos = _sequence(data, value, implicit=implicit, depth=depth + 1)
            continue
        if value + length > end:
            raise _Unusual
        if found is not None and tag in _WANTED:
            if length > DEFER_SIZE:
                raise _Unusual  # pydicom defers it: its reading of it stands
            found[tag] = (vr, data[value : value + length])
        pos = value + length


def _sequence(data: bytes, pos: int, *, implicit: bool, depth: int) -> int:
    """Walk an undefined-length sequence's items from ``pos``; return past its delimiter."""
    if depth > MAX_DEPTH:
        raise _Unusual
    size = len(data)
    while True:
        if size - pos < 8:
            raise _Unusual
        group, element, length = _TAG_LENGTH(data, pos)
        if group == 0xFFFE and element == 0xE0DD:
            return pos + 8
        if group != 0xFFFE or element != 0xE000:
            raise _Unusual
        if length == UNDEFINED_LENGTH:
            pos = _elements(data, pos + 8, size, implicit=implicit, depth=depth, found=None, delimited=True)
        else:
            if pos + 8 + length > size:
                raise _Unusual
            _elements(data, pos + 8, pos + 8 + length, implicit=implicit, depth=depth, found=None)
            pos += 8 + length


def _pixel_data_check(data: bytes, pos: int) -> None:
    """The pixel data element at ``pos`` lies within the file (as dicom.py's _check_complete)."""
    size = len(data)
    if size - pos < 8:
        raise _Unusual
    if data[pos + 4 : pos + 6] in _PIXEL_VRS:
        if size - pos < 12:
            raise _Unusual
        (length,) = _U32(data, pos + 8)
        start = pos + 12
    else:
        (length,) = _U32(data, pos + 4)
        start = pos + 8
    if length != UNDEFINED_LENGTH:
        if start + length > size:
            raise _Unusual
        return
    position = start
    while True:
        if size - position < 8:
            raise _Unusual
        group, element, length = _TAG_LENGTH(data, position)
        if (group, element) == (0xFFFE, 0xE0DD):
            return
        if (group, element) != (0xFFFE, 0xE000) or length == UNDEFINED_LENGTH:
            raise _Unusual
        position += 8 + length
        if position > size:
            raise _Unusual


def _ascii(found: dict[int, tuple[bytes, bytes]], keyword: str, limit: int) -> str:
    raw = found.get(_ASCII[keyword])
    if raw is None:
        return ""
    return raw[1].decode("ascii", "replace").replace("\x00", "").strip()[:limit]


def _text(found: dict[int, tuple[bytes, bytes]], keyword: str, limit: int, codec: str) -> str:
    tag, _ = _TEXT[keyword]
    raw = found.get(tag)
    if raw is None:
        return ""
    value = raw[1]
    if b"\\" in value or b"\x1b" in value:
        raise _Unusual  # several values, or escape sequences: pydicom's conversion
    try:
        text = value.decode(codec)
    except UnicodeDecodeError:
        raise _Unusual from None
    return text.rstrip("\0 ").strip().replace("\x00", "")[:limit]


def _us(found: dict[int, tuple[bytes, bytes]], keyword: str) -> int | None:
    raw = found.get(_US[keyword])
    if raw is None or not raw[1]:
        return None
    if len(raw[1]) != 2:
        raise _Unusual
    return int(_U16(raw[1])[0])


def _charset(found: dict[int, tuple[bytes, bytes]]) -> str:
    raw = found.get(_CHARSET)
    name = raw[1].decode("ascii", "replace").strip(" \x00") if raw is not None else ""
    codec = _CODECS.get(name)
    if codec is None:
        raise _Unusual
    return codec


def header_walk(data: bytes) -> DicomHeader | None:
    """The header of the DICOM file ``data`` (the whole file), or None if pydicom must read it.

    Precondition: :func:`imaging.ingest.dicom.file_sniff` said DICOM. Never raises for a file.
    """
    try:
        return _header(data)
    except (_Unusual, FileRejected, struct.error, ValueError, UnicodeError):
        return None


def _header(data: bytes) -> DicomHeader | None:
    size = len(data)
    meta: dict[int, tuple[bytes, bytes]] = {}
    pos = PREAMBLE + 4
    last_tag = -1
    while True:  # the file meta: explicit VR little endian, group 2
        if size - pos < 8:
            raise _Unusual
        group, element = _TAG(data, pos)
        if group != 0x0002:
            break
        tag = group << 16 | element
        if tag <= last_tag:
            raise _Unusual
        last_tag = tag
        vr = data[pos + 4 : pos + 6]
        if vr in _SHORT_VRS:
            (length,) = _U16(data, pos + 6)
            value = pos + 8
        elif vr in _LONG_VRS:
            (length,) = _U32(data, pos + 8)
            value = pos + 12
        else:
            raise _Unusual
        if length == UNDEFINED_LENGTH or value + length > size:
            raise _Unusual
        meta[tag] = (vr, data[value : value + length])
        pos = value + length
    if _TRANSFER_SYNTAX not in meta:
        raise _Unusual
    transfer_syntax = meta[_TRANSFER_SYNTAX][1].decode("ascii").replace("\x00", "").strip()
    implicit = _syntax(transfer_syntax)
    if implicit is None:
        raise _Unusual
    media_class = (
        meta[_MEDIA_CLASS][1].decode("ascii", "replace").replace("\x00", "").strip()[:64]
        if _MEDIA_CLASS in meta
        else ""
    )
    if media_class == _DICOMDIR_CLASS:
        raise _Unusual
    found: dict[int, tuple[bytes, bytes]] = {}
    header_length = _elements(data, pos, size, implicit=implicit, depth=0, found=found)
    if _EXTENDED_OFFSETS & found.keys():
        raise _Unusual
    for tag, vr in _VR_OF.items():
        if tag in found and not implicit and found[tag][0] != vr:
            raise _Unusual
    if header_length == size:
        if _US["Rows"] in found:
            raise _Unusual  # an image without its pixels: cut short (pydicom's verdict)
    else:
        _pixel_data_check(data, header_length)
    codec = _charset(found)
    media_instance = (
        meta[_MEDIA_INSTANCE][1].decode("ascii", "replace").replace("\x00", "").strip()[:80]
        if _MEDIA_INSTANCE in meta
        else ""
    )
    rows, columns = _us(found, "Rows"), _us(found, "Columns")
    bits = _us(found, "BitsAllocated")
    samples = _us(found, "SamplesPerPixel")
    frames_text = _ascii(found, "NumberOfFrames", 64)
    frames = ascii_int(frames_text)
    if frames_text.strip() and (frames is None or "\\" in frames_text):
        raise _Unusual  # pydicom's reading of an odd frame count stands
    photometric = _ascii(found, "PhotometricInterpretation", 64)
    layout = FrameLayout(
        count=lambda: max(1, frames or 1),
        frame_length=_frame_length(rows, columns, bits, samples, photometric),
        extended=lambda: None,
    )
    return DicomHeader(
        sop_instance_uid=uid_checked(_ascii(found, "SOPInstanceUID", 80) or media_instance),
        sop_class_uid=_ascii(found, "SOPClassUID", 64) or media_class,
        study_instance_uid=uid_checked(_ascii(found, "StudyInstanceUID", 80)),
        series_instance_uid=uid_checked(_ascii(found, "SeriesInstanceUID", 80)),
        transfer_syntax_uid=transfer_syntax[:64],
        study_date=dicom_date(_ascii(found, "StudyDate", 16) or _ascii(found, "SeriesDate", 16)),
        study_time=_ascii(found, "StudyTime", 16),
        study_description=_text(found, "StudyDescription", 200, codec),
        accession_number=_text(found, "AccessionNumber", 64, codec),
        study_id=_text(found, "StudyID", 16, codec),
        referring_physician=_text(found, "ReferringPhysicianName", 200, codec),
        patient_name=_text(found, "PatientName", 200, codec),
        patient_id=_text(found, "PatientID", 64, codec),
        patient_birth_date=_ascii(found, "PatientBirthDate", 16),
        patient_sex=_ascii(found, "PatientSex", 16),
        modality=_ascii(found, "Modality", 16).upper(),
        series_number=ascii_int(_ascii(found, "SeriesNumber", 64)),
        series_description=_text(found, "SeriesDescription", 200, codec),
        body_part=_ascii(found, "BodyPartExamined", 64).upper(),
        instance_number=ascii_int(_ascii(found, "InstanceNumber", 64)),
        rows=rows,
        columns=columns,
        number_of_frames=max(frames or 1, 1),
        bits_allocated=bits if bits is not None and 0 < bits <= 64 else None,
        slice_location=ascii_float(_ascii(found, "SliceLocation", 64)),
        preamble_suspicious=preamble_is_suspicious(data[:PREAMBLE]),
        pixel_index=pixel_index_of(layout, UID(transfer_syntax), io.BytesIO(data), size, header_length),
    )


def _frame_length(
    rows: int | None, columns: int | None, bits: int | None, samples: int | None, photometric: str
) -> Callable[[], int | None]:
    """pixel_index's native_frame_length, from the values read here."""

    def length() -> int | None:
        if rows is None or columns is None or bits is None:
            raise ValueError("no frame size")
        if bits % 8:
            return None
        value = rows * columns * (samples or 1) * (bits // 8)
        return value * 2 // 3 if photometric == "YBR_FULL_422" else value

    return length
