"""Accept headers and multipart/related bodies of WADO-RS (DICOM PS3.18 §8.7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

# The transfer syntaxes each bulk-data image media type may carry (PS3.18 Table 8.7.3-5).
IMAGE_MEDIA_TYPES: dict[str, frozenset[str]] = {
    "image/jpeg": frozenset(
        {
            "1.2.840.10008.1.2.4.50",
            "1.2.840.10008.1.2.4.51",
            "1.2.840.10008.1.2.4.57",
            "1.2.840.10008.1.2.4.70",
        }
    ),
    "image/jls": frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}),
    "image/x-jls": frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}),
    "image/jp2": frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}),
    "image/jpx": frozenset({"1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"}),
    "image/x-dicom-rle": frozenset({"1.2.840.10008.1.2.5"}),
    "image/dicom-rle": frozenset({"1.2.840.10008.1.2.5"}),
}

UNCOMPRESSED = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header, e.g. ``multipart/related; type="application/dicom"``."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    quality: float = 1.0

    @property
    def part_type(self) -> str | None:
        """The ``type`` of a multipart range (what each part is), lower-cased."""
        value = self.params.get("type")
        return value.lower() if value else None

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header, best first (an empty header means ``*/*``)."""
    ranges: list[MediaRange] = []
    for position, item in enumerate(header.split(",")):
        pieces = [piece.strip() for piece in item.split(";")]
        if not pieces[0]:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 0.0
        ranges.append(MediaRange(pieces[0].lower(), params, quality - position * 1e-6))
    ranges = [entry for entry in ranges if entry.quality > 0]
    return sorted(ranges, key=lambda entry: -entry.quality) or [MediaRange("*/*")]


@dataclass(frozen=True)
class Choice:
    """What to send: the part's media type, its transfer syntax, and whether to decode."""

    part_type: str
    transfer_syntax: str
    decode: bool


def choose_frame_encoding(accept: str, stored: str) -> Choice | None:
    """How to send a frame stored in ``stored`` to a client that sent ``accept`` (None: 406).

    ``transfer-syntax=*`` (what Cornerstone and OHIF send) gets the stored encoding, so a
    compressed frame crosses the network compressed and is decoded in the browser. Explicit VR
    Little Endian, also the default when the client names none, gets raw pixels, decoding on the
    server when the stored frame is compressed.
    """
    for entry in parse_accept(accept):
        if entry.media_type in ("*/*", "multipart/*"):
            return Choice("application/octet-stream", stored, decode=False)
        if entry.media_type != "multipart/related":
            continue
        part = entry.part_type or "application/octet-stream"
        wanted = entry.transfer_syntax
        if part in ("application/octet-stream", "*/*", "*"):
            if wanted == "*" or (wanted == stored and stored in UNCOMPRESSED):
                return Choice("application/octet-stream", stored, decode=False)
            if wanted in (None, *UNCOMPRESSED):
                raw = wanted or ExplicitVRLittleEndian
                return Choice("application/octet-stream", raw, decode=stored not in UNCOMPRESSED)
            continue
        allowed = IMAGE_MEDIA_TYPES.get(part)
        if allowed and stored in allowed and wanted in (None, "*", stored):
            return Choice(part, stored, decode=False)
        if part == "image/*" and wanted in (None, "*", stored) and stored not in UNCOMPRESSED:
            image_type = next(name for name, syntaxes in IMAGE_MEDIA_TYPES.items() if stored in syntaxes)
            return Choice(image_type, stored, decode=False)
    return None


def wants_stored_instance(accept: str, stored: str) -> bool | None:
    """For whole instances: True to send the file as stored, False to send it converted to
    Explicit VR Little Endian (decompressed, or re-encoded from Implicit VR), None if nothing the
    client accepts can be produced.

    A request that names no transfer syntax (``*/*``, or ``application/dicom`` without the
    parameter) gets Explicit VR Little Endian, the DICOMweb default (PS3.18 §8.7.3.5.2): a client
    that did not ask for a compressed file may not be able to read one. ``transfer-syntax=*``
    (what viewers and dicomweb-client send) gets the file as stored. Retired Big Endian files
    are always sent as stored: pydicom cannot re-encode them to little endian.
    """
    as_explicit = stored in (ExplicitVRLittleEndian, ExplicitVRBigEndian)
    for entry in parse_accept(accept):
        if entry.media_type in ("*/*", "multipart/*"):
            return as_explicit
        if entry.media_type != "multipart/related" or entry.part_type not in (None, "application/dicom"):
            continue
        wanted = entry.transfer_syntax
        if wanted in ("*", stored) or (wanted == ImplicitVRLittleEndian and stored in UNCOMPRESSED):
            return True
        if wanted in (None, ExplicitVRLittleEndian):
            return as_explicit
    return None


def new_boundary() -> str:
    return uuid.uuid4().hex


def multipart_body(parts: Iterable[tuple[str, Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """A multipart/related body: each part is (Content-Type, its chunks). Chunks are passed on
    as they come, so a part of any size costs only one chunk of memory."""
    for content_type, chunks in parts:
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


# --- QIDO-RS and metadata: JSON or XML (PS3.18 §8.7.3.2, §10.6.3.2) ----------------------------

JSON_TYPES = frozenset({"application/dicom+json", "application/json", "*/*", "application/*"})
XML_TYPE = "application/dicom+xml"


def choose_metadata_format(accept: str) -> str | None:
    """ "json" or "xml" for a search or metadata answer to ``accept``; None: nothing acceptable.

    XML is sent as PS3.18 says, a multipart/related body of ``application/dicom+xml`` parts
    (one per instance or result); a bare ``application/dicom+xml`` is taken to mean the same.
    """
    for entry in parse_accept(accept):
        if entry.media_type in JSON_TYPES:
            return "json"
        if entry.media_type == XML_TYPE:
            return "xml"
        if entry.media_type in ("multipart/related", "multipart/*"):
            part = entry.part_type
            if part in (None, XML_TYPE):
                return "xml"
            if part in JSON_TYPES:
                return "json"
    return None


# --- Rendered resources (PS3.18 §8.7.4, Table 8.7.4-1) ------------------------------------------

RENDERED_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF"}


def choose_rendered_type(accept: str) -> str | None:
    """The image media type to render for ``accept`` (PNG when anything goes: lossless); None
    when the client accepts none of PNG, JPEG and GIF (a 406)."""
    for entry in parse_accept(accept):
        media_type = entry.media_type
        if media_type == "multipart/related":
            media_type = entry.part_type or "image/png"
        if media_type in ("*/*", "image/*"):
            return "image/png"
        if media_type in RENDERED_FORMATS:
            return media_type
    return None
