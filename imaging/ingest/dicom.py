"""One file from a patient: what it is, and if it is DICOM, the header reviewers need.

Nothing here touches the database or storage; :mod:`imaging.ingest.pipeline` does. Every way a
file can be bad ends in :class:`FileRejected` carrying a FileProblem code and a plain message.

A little over 400 lines on purpose: sniffing a file and reading its header share the byte-level
checks (preamble, transfer syntax, DICOMDIR), and every way of refusing a file is listed here.
"""

# long module: sniffing a file and reading its header share the byte-level checks
# (preamble, transfer syntax, truncation) that decide every FileRejected code; see the docstring.

from __future__ import annotations

import enum
import io
import logging
import posixpath
import re
import struct
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from imaging.ingest import messages
from imaging.ingest.tar import is_tar
from imaging.pixel_index import PixelIndex, pixel_index_build

# pydicom's warnings quote values from the file (names, dates, UIDs): patient data, which never
# goes to our logs. What matters about a bad file is recorded as a FileProblem instead.
logging.getLogger("pydicom").setLevel(logging.CRITICAL)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
PREAMBLE = 128
HEAD_BYTES = PREAMBLE + 4
# What is read of every file to tell what it is (a tar's header is one 512-byte block).
SNIFF_BYTES = 512
# Elements larger than this are not read while parsing the header (large private blobs,
# overlays); nothing we keep needs them.
DEFER_SIZE = 64 * 1024
UNDEFINED_LENGTH = 0xFFFFFFFF
_PIXEL_VRS = (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN")
DEFLATED = "1.2.840.10008.1.2.1.99"
# A DICOMDIR of a full DVD is a few MB; anything larger is not one we need to read.
MAX_DICOMDIR_BYTES = 64 * 1024 * 1024
# PostgreSQL's integer columns hold less than 2**31.
INT_LIMIT = 2**31
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*\Z")

# Files that come with a disc's viewer, or that operating systems add; never medical images.
_VIEWER_EXTENSIONS_TEXT = (
    ".exe .dll .ocx .sys .drv .cpl .scr .msi .msp .cab .bat .cmd .com .vbs .ps1 .sh .jar .class "
    ".app .dylib .so .inf .ini .cfg .chm .hlp .htm .html .js .css .xml .xsl .json .txt .rtf .ico "
    ".bmp .gif .manifest .lnk .url .db .dat .lic .log .nfo"
)
VIEWER_EXTENSIONS = frozenset(_VIEWER_EXTENSIONS_TEXT.split())
SYSTEM_NAMES = frozenset({"autorun.inf", "desktop.ini", "thumbs.db", ".ds_store"})


class FileKind(enum.Enum):
    EMPTY = "empty"
    ZIP = "zip"
    TAR = "tar"  # uncompressed: how the browser sends a batch of a folder drop
    DICOM = "dicom"
    PDF = "pdf"  # a report on the disc
    PROGRAM = "program"  # by its content: a program whatever its name says
    VIEWER_FILE = "viewer_file"  # by its name: part of a CD viewer or an OS's bookkeeping
    OTHER = "other"


class FileRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def file_sniff(head: bytes, path: str) -> FileKind:
    """What a file is, from its first :data:`SNIFF_BYTES` bytes (content first, name last)."""
    if not head:
        return FileKind.EMPTY
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return FileKind.ZIP
    if len(head) >= HEAD_BYTES and head[PREAMBLE:HEAD_BYTES] == b"DICM":
        return FileKind.DICOM
    if is_tar(head):
        return FileKind.TAR
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%PDF-"):
        return FileKind.PDF
    if (
        head[:2] == b"MZ"
        or head[:4] == b"\x7fELF"
        or head[:4] in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
        or head[:4] == b"\xca\xfe\xba\xbe"
        or head[:2] == b"#!"
    ):
        return FileKind.PROGRAM
    name = posixpath.basename(path).lower()
    if name in SYSTEM_NAMES or posixpath.splitext(name)[1] in VIEWER_EXTENSIONS:
        return FileKind.VIEWER_FILE
    return FileKind.OTHER


def preamble_is_suspicious(head: bytes) -> bool:
    """CVE-2019-11687: a preamble may hold an executable header, making the file a "polyglot"
    that runs as a program. Only all zeros and a TIFF header are legitimate uses we keep."""
    preamble = head[:PREAMBLE]
    if preamble.startswith((b"II*\x00", b"MM\x00*")):
        return False
    return preamble.strip(b"\x00") != b""


class PreambleZeroingReader(io.RawIOBase):
    """Reads ``source`` from its start with the 128-byte preamble replaced by zeros (streamed)."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.source.read(len(view))
        count = len(data)
        view[:count] = data
        if self.position < PREAMBLE:
            end = min(PREAMBLE - self.position, count)
            view[:end] = b"\x00" * end
        self.position += count
        return count


@dataclass
class DicomHeader:
    """What we keep from one DICOM file's header. Text fields are cut to the model's lengths."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    study_date: date | None = None
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    study_id: str = ""
    referring_physician: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    body_part: str = ""
    instance_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int = 1
    bits_allocated: int | None = None
    slice_location: float | None = None
    preamble_suspicious: bool = False
    is_dicomdir: bool = False
    # Where the header and frames lie in the file, for ranged reads (None for a DICOMDIR).
    pixel_index: PixelIndex | None = None
    # For a DICOMDIR: the files it lists, relative to its own folder, "/"-separated.
    referenced_files: list[str] = field(default_factory=list)
    # For a DICOMDIR: [SOP Instance UID, path] of every image it lists, or None if it could not
    # be read (kept for a folder drop, to name the images that did not arrive: imaging.ingest.disc).
    listed_images: list[list[str]] | None = None


def dicom_date(value: str) -> date | None:
    value = (value or "").strip()[:8]
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _text(ds: pydicom.Dataset, keyword: str, limit: int) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed value must cost us one field, not the file
        return ""
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip().replace("\x00", "")[:limit]


def _int(ds: pydicom.Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        if isinstance(value, pydicom.multival.MultiValue):
            value = value[0] if value else None
        return None if value is None or value == "" else int(value)
    except Exception:
        return None


def _bits_allocated(ds: pydicom.Dataset) -> int | None:
    """Bits Allocated when sensible (1 to 64); a hostile value never reaches the database."""
    bits = _int(ds, "BitsAllocated")
    return bits if bits is not None and 0 < bits <= 64 else None


# Elements whose value representation allows only ASCII (UI, DA, TM, CS, IS, DS): their value is
# read straight from the raw bytes. pydicom's conversion (a value class per element, the
# character set looked up each time) costs a third of a header's parse, and these need none of it.
_ASCII_TAGS = {
    keyword: tag_for_keyword(keyword)
    for keyword in (
        "TransferSyntaxUID",
        "MediaStorageSOPClassUID",
        "MediaStorageSOPInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "StudyDate",
        "SeriesDate",
        "StudyTime",
        "PatientBirthDate",
        "PatientSex",
        "Modality",
        "BodyPartExamined",
        "SeriesNumber",
        "InstanceNumber",
        "NumberOfFrames",
        "SliceLocation",
    )
}


def _ascii(ds: pydicom.Dataset, keyword: str, limit: int) -> str:
    """Like :func:`_text` for an ASCII-only element (a keyword of ``_ASCII_TAGS``), without
    pydicom's conversion; multiple values come joined by backslashes, as in the file."""
    raw = ds._dict.get(_ASCII_TAGS[keyword])  # type: ignore[call-overload]
    if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes):
        return _text(ds, keyword, limit)  # absent, deferred, or already converted
    return raw.value.decode("ascii", "replace").replace("\x00", "").strip()[:limit]


def _ascii_int(ds: pydicom.Dataset, keyword: str) -> int | None:
    return ascii_int(_ascii(ds, keyword, 64))


def ascii_int(text: str) -> int | None:
    """The first value of an IS element's text, or None; None too beyond what the database's
    integer columns hold (a number that large is not an instance number, and must not fail the
    insert of a whole batch)."""
    text = text.split("\\")[0].strip()
    if not text:
        return None
    try:
        number = int(text)
    except ValueError:
        try:
            value = float(text)  # "12.0" is a valid IS; "12.5" is not
        except ValueError:
            return None
        if not value.is_integer():
            return None
        number = int(value)
    return number if -INT_LIMIT < number < INT_LIMIT else None


def _ascii_float(ds: pydicom.Dataset, keyword: str) -> float | None:
    return ascii_float(_ascii(ds, keyword, 64))


def ascii_float(text: str) -> float | None:
    """The value of a single-valued DS element's text, or None."""
    if not text or "\\" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def uid_checked(value: str) -> str:
    value = value.strip().rstrip("\x00").strip()
    if not value or len(value) > 64 or not _UID.match(value):
        raise FileRejected("unreadable", messages.MISSING_IDENTIFIERS)
    return value


def _check_complete(ds: pydicom.Dataset, fp: BinaryIO, size: int) -> None:
    """Raise if any element of the header, or the pixel data, claims more bytes than the file has.

    pydicom reads a short file without complaint (a value cut short is kept as it is), so a
    truncated file or a length field larger than the file would otherwise pass as valid.
    """
    elements = ds._dict  # the raw elements, read without converting them
    last_end = 0
    for raw in elements.values():
        if isinstance(raw, RawDataElement) and raw.length != UNDEFINED_LENGTH:
            end = raw.value_tell + raw.length
            if end > size:
                raise FileRejected("truncated", messages.TRUNCATED)
    position = fp.tell()
    if position > size:
        raise FileRejected("truncated", messages.TRUNCATED)
    # pydicom stops quietly at a partial element header at the end of the file: then the last
    # element it kept ends before the place it stopped reading.
    if elements:
        # The last element read (pydicom keeps file order); not max() over the tags, whose
        # Python-level comparisons cost more than parsing the header.
        last = list(elements.values())[-1]
        if isinstance(last, RawDataElement) and last.length != UNDEFINED_LENGTH:
            last_end = last.value_tell + last.length
            if last_end < position:
                raise FileRejected("truncated", messages.TRUNCATED)
    fp.seek(position)
    tag_bytes = fp.read(4)
    if len(tag_bytes) < 4:
        # The header ended with the file: fine for a report or a structured document, but an
        # image without its pixels was cut short.
        if "Rows" in ds and "PixelData" not in ds:
            raise FileRejected("truncated", messages.TRUNCATED)
        return
    _, little = ds.original_encoding
    endian = "<" if little in (True, None) else ">"
    group, element = struct.unpack(endian + "HH", tag_bytes)
    if (group, element) not in ((0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)):
        return
    header = fp.read(8)
    if len(header) < 4:
        raise FileRejected("truncated", messages.TRUNCATED)
    if header[:2] in _PIXEL_VRS:  # explicit VR: VR, 2 reserved bytes, 4-byte length
        if len(header) < 8:
            raise FileRejected("truncated", messages.TRUNCATED)
        (length,) = struct.unpack(endian + "I", header[4:8])
    else:  # implicit VR (whatever the transfer syntax claimed): a 4-byte length
        (length,) = struct.unpack(endian + "I", header[:4])
        fp.seek(position + 8)
    start = fp.tell()
    if length != UNDEFINED_LENGTH:
        if start + length > size:
            raise FileRejected("truncated", messages.TRUNCATED)
        return
    # Encapsulated (compressed) pixel data: walk the fragment headers without reading them.
    position = start
    while True:
        fp.seek(position)
        item = fp.read(8)
        if len(item) < 8:
            raise FileRejected("truncated", messages.TRUNCATED)
        group, element, length = struct.unpack("<HHI", item)
        if (group, element) == (0xFFFE, 0xE0DD):
            return
        if (group, element) != (0xFFFE, 0xE000) or length == UNDEFINED_LENGTH:
            raise FileRejected("unreadable", messages.UNREADABLE)
        position += 8 + length
        if position > size:
            raise FileRejected("truncated", messages.TRUNCATED)


def _directory_records(ds: pydicom.Dataset) -> tuple[list[str], list[list[str]]]:
    """A DICOMDIR's files (every record's ReferencedFileID) and its images ([SOP Instance UID,
    path] of the records naming both), in one pass: reading a CD's thousands of records through
    pydicom costs about 0.1 ms each."""
    paths: list[str] = []
    listed: list[list[str]] = []
    for record in ds.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        path = "/".join(str(part).strip() for part in parts)
        paths.append(path)
        uid = str(record.get("ReferencedSOPInstanceUIDInFile", "") or "").strip()
        if uid:
            listed.append([uid[:64], path[:1000]])
    return paths, listed


def header_read(fp: BinaryIO, size: int) -> DicomHeader:
    """Parse the header of the DICOM file in ``fp`` (seekable, ``size`` bytes long).

    Precondition: :func:`file_sniff` said DICOM. Raises :class:`FileRejected` for a file we do
    not keep; never anything else for a bad file (RecursionError from sequences nested
    hundreds deep included).
    """
    if isinstance(fp, io.BytesIO):
        # The common file without pydicom (a CT slice in a tenth of the time); None for any
        # file that is not ordinary, which pydicom then reads as below.
        from imaging.ingest.dicom_walk import header_walk

        data = fp.getvalue()  # the bytes it was made from, not a copy
        if len(data) == size:
            walked = header_walk(data)
            if walked is not None:
                return walked
    fp.seek(0)
    head = fp.read(HEAD_BYTES)
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            # pydicom warns about every odd value; the file is judged by what it holds.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, stop_before_pixels=True, defer_size=DEFER_SIZE)
            header_length = fp.tell()
            meta = ds.file_meta
            if _ascii(meta, "TransferSyntaxUID", 64) != DEFLATED:
                # A deflated file is read through a decompressor: positions are not the file's.
                _check_complete(ds, fp, size)
            media_class = _ascii(meta, "MediaStorageSOPClassUID", 64)
            if media_class == DICOMDIR_SOP_CLASS:
                return _dicomdir_header(fp, size)
            header = DicomHeader(
                sop_instance_uid=uid_checked(
                    _ascii(ds, "SOPInstanceUID", 80) or _ascii(meta, "MediaStorageSOPInstanceUID", 80)
                ),
                sop_class_uid=_ascii(ds, "SOPClassUID", 64) or media_class,
                study_instance_uid=uid_checked(_ascii(ds, "StudyInstanceUID", 80)),
                series_instance_uid=uid_checked(_ascii(ds, "SeriesInstanceUID", 80)),
                transfer_syntax_uid=_ascii(meta, "TransferSyntaxUID", 64),
                study_date=dicom_date(_ascii(ds, "StudyDate", 16) or _ascii(ds, "SeriesDate", 16)),
                study_time=_ascii(ds, "StudyTime", 16),
                study_description=_text(ds, "StudyDescription", 200),
                accession_number=_text(ds, "AccessionNumber", 64),
                study_id=_text(ds, "StudyID", 16),
                referring_physician=_text(ds, "ReferringPhysicianName", 200),
                patient_name=_text(ds, "PatientName", 200),
                patient_id=_text(ds, "PatientID", 64),
                patient_birth_date=_ascii(ds, "PatientBirthDate", 16),
                patient_sex=_ascii(ds, "PatientSex", 16),
                modality=_ascii(ds, "Modality", 16).upper(),
                series_number=_ascii_int(ds, "SeriesNumber"),
                series_description=_text(ds, "SeriesDescription", 200),
                body_part=_ascii(ds, "BodyPartExamined", 64).upper(),
                instance_number=_ascii_int(ds, "InstanceNumber"),
                rows=_int(ds, "Rows"),
                columns=_int(ds, "Columns"),
                number_of_frames=max(_ascii_int(ds, "NumberOfFrames") or 1, 1),
                bits_allocated=_bits_allocated(ds),
                slice_location=_ascii_float(ds, "SliceLocation"),
                preamble_suspicious=preamble_is_suspicious(head),
                pixel_index=pixel_index_build(ds, fp, size, header_length),
            )
    except FileRejected:
        raise
    except RecursionError:
        raise FileRejected("unreadable", messages.TOO_DEEPLY_NESTED) from None
    except (InvalidDicomError, EOFError, struct.error):
        raise FileRejected("truncated", messages.TRUNCATED) from None
    except Exception:
        raise FileRejected("unreadable", messages.UNREADABLE) from None
    return header


def _dicomdir_header(fp: BinaryIO, size: int) -> DicomHeader:
    header = DicomHeader(
        sop_instance_uid="",
        sop_class_uid=DICOMDIR_SOP_CLASS,
        study_instance_uid="",
        series_instance_uid="",
        transfer_syntax_uid="",
        is_dicomdir=True,
    )
    if size <= MAX_DICOMDIR_BYTES:
        fp.seek(0)
        try:
            ds = pydicom.dcmread(fp, force=True)
            header.referenced_files, header.listed_images = _directory_records(ds)
        except RecursionError:
            header.referenced_files, header.listed_images = [], None
        except Exception:  # the index only orders the walk; without it every file is still read
            header.referenced_files, header.listed_images = [], None
    return header
