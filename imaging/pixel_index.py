"""Where the header and each frame lie in a stored DICOM file, so that metadata and frames are
read with ranged reads: a frame of a 100 MiB cine on S3 then costs the frame, not the file.

Made at ingest from the file being parsed (:func:`pixel_index_build`), kept on the instance's
row, and made on first use for instances stored before indexes existed
(:func:`instance_pixel_index_fill`). Frames located through the index are byte for byte what
pydicom's ``get_frame`` returns from the whole file: the rules for finding an encapsulated
frame (extended or basic offset table, one fragment per frame, JPEG end-of-image markers) are
pydicom's, applied once at ingest instead of at every read.
"""

from __future__ import annotations

import io
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, parse_basic_offsets
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from imaging.instance_files import instance_file_open_seekable, instance_file_read_range, instance_file_size
from imaging.models import Instance
from storage.base import storage_unavailable
from storage.tenant import tenant_storage

PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_ITEM = 0xFFFEE000
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED_LENGTH = 0xFFFFFFFF
_SPAN = struct.Struct("<QQ")
# An index is kept on the row: a file claiming more frames than this is read as before (whole).
MAX_INDEXED_FRAMES = 100_000
# Files up to this size are indexed from one read of the whole file; larger ones from ranged
# reads (64 KiB or more each) of the header and of each fragment's item header.
WHOLE_READ_BYTES = 8 * 1024 * 1024
# Elements larger than this are not read while parsing a header to index it (as at ingest).
_DEFER_SIZE = 64 * 1024


class NotIndexable(Exception):
    """The frames cannot be located ahead of time; they are found by reading the file."""


@dataclass(frozen=True)
class PixelIndex:
    """``header_length``: bytes before the Pixel Data element (the whole file if it has none);
    0 when the file cannot be read in ranges at all (deflated). ``pixel_data_offset``: where the
    Pixel Data value starts, or None. ``frame_spans``: per frame, the (start, end) of its bytes
    in the file (native), or of the items holding its fragments (``frames_encapsulated``);
    empty when the frames are found by reading the file."""

    header_length: int
    pixel_data_offset: int | None = None
    frames_encapsulated: bool = False
    frame_spans: bytes = b""

    def fields(self) -> dict[str, object]:
        """The Instance fields that keep this index."""
        return {
            "header_length": self.header_length,
            "pixel_data_offset": self.pixel_data_offset,
            "frames_encapsulated": self.frames_encapsulated,
            "frame_spans": self.frame_spans,
        }


NOT_INDEXABLE = PixelIndex(header_length=0)


def frame_count(header: Dataset) -> int:
    try:
        return max(1, int(header.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def native_frame_length(header: Dataset) -> int | None:
    """Bytes of one uncompressed frame; None for bit-packed pixels (not whole bytes)."""
    samples = int(header.get("SamplesPerPixel") or 1)
    bits = int(header.BitsAllocated)
    pixels = int(header.Rows) * int(header.Columns) * samples
    if bits % 8:
        return None
    length = pixels * (bits // 8)
    if header.get("PhotometricInterpretation") == "YBR_FULL_422":
        length = length * 2 // 3  # two chroma samples shared by each pair of pixels
    return length


def span_of(frame_spans: bytes, number: int) -> tuple[int, int] | None:
    """The (start, end) of frame ``number`` (1-based), or None if the index has no such frame."""
    if not 1 <= number <= len(frame_spans) // _SPAN.size:
        return None
    start, end = _SPAN.unpack_from(frame_spans, (number - 1) * _SPAN.size)
    return start, end


def frame_from_span(data: bytes, *, encapsulated: bool) -> bytes:
    """A frame from the bytes of its span: as they are (native), or its fragments joined."""
    return b"".join(generate_fragments(data)) if encapsulated else data


@dataclass(frozen=True)
class FrameLayout:
    """What the index needs of a header, each asked only when needed (as they may raise for a
    header that lacks them): the frame count, a native frame's length, and the extended offset
    table's two values."""

    count: Callable[[], int]
    frame_length: Callable[[], int | None]
    extended: Callable[[], tuple[bytes, bytes] | None]


def frame_layout(header: Dataset) -> FrameLayout:
    def extended() -> tuple[bytes, bytes] | None:
        if "ExtendedOffsetTable" in header and "ExtendedOffsetTableLengths" in header:
            return bytes(header.ExtendedOffsetTable), bytes(header.ExtendedOffsetTableLengths)
        return None

    return FrameLayout(
        count=lambda: frame_count(header), frame_length=lambda: native_frame_length(header), extended=extended
    )


def pixel_index_build(header: Dataset, fp: BinaryIO, size: int, header_length: int) -> PixelIndex:
    """The index of a file whose header (read with ``stop_before_pixels``) ends at
    ``header_length``. ``fp`` is the whole file, seekable; it is left anywhere."""
    ts = UID(header.file_meta.get("TransferSyntaxUID") or ImplicitVRLittleEndian)
    return pixel_index_of(frame_layout(header), ts, fp, size, header_length)


def pixel_index_of(layout: FrameLayout, ts: UID, fp: BinaryIO, size: int, header_length: int) -> PixelIndex:
    """:func:`pixel_index_build` from a header's :class:`FrameLayout` and transfer syntax."""
    if ts == DeflatedExplicitVRLittleEndian:
        return NOT_INDEXABLE  # positions in the parsed header are not the file's
    try:
        return _pixel_index(layout, ts, fp, size, header_length)
    except (NotIndexable, ValueError, TypeError, KeyError, AttributeError, struct.error):
        return PixelIndex(header_length=header_length)


def _pixel_index(layout: FrameLayout, ts: UID, fp: BinaryIO, size: int, header_length: int) -> PixelIndex:
    index = PixelIndex(header_length=header_length)
    if not ts.is_little_endian:
        return index  # Big Endian (retired): frames are decoded from the whole file
    fp.seek(header_length)
    element = fp.read(8)
    if len(element) < 8 or element[:4] != PIXEL_DATA_TAG:
        return index
    if ts == ImplicitVRLittleEndian:
        (length,) = struct.unpack("<I", element[4:8])
        value = header_length + 8
    else:
        (length,) = struct.unpack("<I", fp.read(4))  # OB/OW: 2 reserved bytes, then 4
        value = header_length + 12
    count = layout.count()
    if count > MAX_INDEXED_FRAMES:
        return index
    encapsulated = ts.is_compressed or length == _UNDEFINED_LENGTH
    if encapsulated:
        spans = _encapsulated_spans(layout, fp, value, count, size)
    else:
        spans = _native_spans(layout, value, count, size)
    return PixelIndex(
        header_length=header_length,
        pixel_data_offset=value,
        frames_encapsulated=encapsulated,
        frame_spans=b"".join(_SPAN.pack(start, end) for start, end in spans),
    )


def _native_spans(layout: FrameLayout, value: int, count: int, size: int) -> list[tuple[int, int]]:
    frame_length = layout.frame_length()
    if frame_length is None:
        raise NotIndexable
    spans = [(value + i * frame_length, value + (i + 1) * frame_length) for i in range(count)]
    return [(start, end) for start, end in spans if end <= size]


def _items(fp: BinaryIO, first: int, size: int) -> tuple[list[tuple[int, int]], int]:
    """The (position, value length) of every fragment item from ``first``, and where they end
    (the sequence delimiter, or the end of the file)."""
    items: list[tuple[int, int]] = []
    position = first
    while True:
        fp.seek(position)
        raw = fp.read(8)
        if len(raw) < 8:
            return items, position
        group, element, length = struct.unpack("<HHI", raw)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            return items, position
        if tag != _ITEM or length == _UNDEFINED_LENGTH or position + 8 + length > size:
            raise NotIndexable
        items.append((position, length))
        if len(items) > MAX_INDEXED_FRAMES:
            raise NotIndexable
        position += 8 + length


def _encapsulated_spans(
    layout: FrameLayout, fp: BinaryIO, value: int, count: int, size: int
) -> list[tuple[int, int]]:
    """Each frame's items, found as ``pydicom.encaps.get_frame`` finds them."""
    fp.seek(value)
    basic = parse_basic_offsets(fp)
    first = fp.tell()
    items, end = _items(fp, first, size)
    starts = {position: length for position, length in items}
    extended = layout.extended()
    if extended is not None:
        offsets, lengths = (list(struct.unpack(f"<{len(raw) // 8}Q", raw)) for raw in extended)
        spans = []
        for offset, length in zip(offsets, lengths, strict=False):
            # get_frame reads ``length`` bytes after the item's header; a span of the item cut
            # to that length yields the same bytes, if an item does start there.
            if starts.get(first + offset, -1) < length:
                raise NotIndexable
            spans.append((first + offset, first + offset + 8 + length))
        return spans
    if basic:
        bounds = [first + offset for offset in basic] + [end]
        if bounds != sorted(bounds):
            raise NotIndexable
        return list(itertools.pairwise(bounds))
    spans_of_items = [(position, position + 8 + length) for position, length in items]
    if len(items) == 1:
        return spans_of_items
    if len(items) == count:
        return spans_of_items
    if count == 1:
        return [(first, end)]
    # Frames end with a JPEG end-of-image marker in their last fragment's last 10 bytes.
    spans = []
    group_start = None
    for position, length in items:
        group_start = position if group_start is None else group_start
        fp.seek(position + 8 + max(0, length - 10))
        if b"\xff\xd9" in fp.read(min(10, length)):
            spans.append((group_start, position + 8 + length))
            group_start = None
    if group_start is not None:
        spans.append((group_start, end))
    return spans


def pixel_index_read(fp: BinaryIO, size: int) -> PixelIndex:
    """Parse the header of the file in ``fp`` and index it (for files stored before indexes)."""
    fp.seek(0)
    header = dcmread(fp, stop_before_pixels=True, defer_size=_DEFER_SIZE)
    return pixel_index_build(header, fp, size, fp.tell())


def instance_pixel_index_fill(*, instance: Instance) -> None:
    """Index the stored file of an instance ingested before indexes were made, reading its
    header and (if compressed) its fragments' item headers in ranges (a small file in one
    read: one request costs less than one per fragment); the row is written only
    if still unindexed (two requests may race: both find the same index), and ``instance`` is
    updated. Precondition: the connection is on the instance's tenant.

    A read that writes: the index is derived from the immutable file (a cache of it), not a
    state of the case, so making it on a GET is safe to repeat.
    """
    storage = tenant_storage()
    try:
        size = instance_file_size(instance, storage)
        if size <= WHOLE_READ_BYTES:
            index = pixel_index_read(io.BytesIO(instance_file_read_range(instance, 0, size, storage)), size)
        else:
            with instance_file_open_seekable(instance, storage) as fp:
                index = pixel_index_read(fp, size)
    except Exception as exc:
        if storage_unavailable(exc) or isinstance(exc, FileNotFoundError):
            raise  # nothing was learnt about the file: tried again on the next read
        index = NOT_INDEXABLE  # an unreadable header is the frames code's to report, as before
    for name, value in index.fields().items():
        setattr(instance, name, value)
    Instance.objects.filter(pk=instance.pk, header_length__isnull=True).update(**index.fields())
