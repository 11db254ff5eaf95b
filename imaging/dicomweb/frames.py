"""Pixel data of one stored instance: a frame as stored, a frame decoded, a rendered picture.

Files are read from the tenant's storage in ranges: the header, then the one frame asked for,
where the instance's pixel index (:mod:`imaging.pixel_index`) says they lie. A frame of a
multi-frame ultrasound cine is a few hundred KiB; the whole file may be hundreds of MiB, and on
S3 reading it whole took a fifth of a second per frame. Files that cannot be indexed are read as
streams, as before; either way only the header and one frame are held in memory.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import pixel_array
from pydicom.pixels.processing import apply_modality_lut
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from imaging.instance_files import instance_file_open, instance_file_read_range
from imaging.models import Instance
from imaging.pixel_index import (
    frame_count,
    frame_from_span,
    instance_pixel_index_fill,
    native_frame_length,
    span_of,
)

# Pixel data whose bytes are the same whether the file is Implicit or Explicit VR Little
# Endian: a "raw" frame of either is served as stored.
NATIVE_LITTLE_ENDIAN = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian})

# Objects larger than this are spooled to a temporary file when the backend's stream cannot seek
# (S3): pydicom needs to seek to find one frame.
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024

_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


class FrameError(Exception):
    """The frame cannot be produced; ``message`` is safe to show (it holds no patient data)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


FRAME_OUT_OF_RANGE = "There is no frame with that number in this instance."
NO_PIXEL_DATA = "This instance holds no image."
CANNOT_DECODE = "The image's compression (transfer syntax {ts}) cannot be decoded on the server."


# One frames request answers at most this many frames and this many (decoded) bytes: each frame
# is produced and sent on its own, so memory stays one frame, and the bytes bound the work a
# single request can ask for.
MAX_FRAMES_PER_REQUEST = 100
MAX_FRAME_BYTES_PER_REQUEST = 256 * 1024 * 1024
FRAMES_TOO_LARGE = "Too many bytes of frames in one request: ask for fewer frames at a time."


def frames_request_check(source: Instance | StoredFile, numbers: list[int], *, decode: bool = True) -> None:
    """Before any byte is sent: every frame exists (FrameError FRAME_OUT_OF_RANGE), and the
    frames' size is within MAX_FRAME_BYTES_PER_REQUEST (FrameError FRAMES_TOO_LARGE): decoded,
    or as stored when they are sent as stored and the index knows their sizes (then without
    reading the header: such a request reads nothing but its frames)."""
    stored = stored_file(source)
    if not decode and stored.spans:
        spans = [stored.span(number) for number in numbers]
        if None in spans:
            raise FrameError(FRAME_OUT_OF_RANGE)
        if sum(end - start for start, end in filter(None, spans)) > MAX_FRAME_BYTES_PER_REQUEST:
            raise FrameError(FRAMES_TOO_LARGE)
        return
    header = stored.header()
    count = frame_count(header)
    if any(not 1 <= number <= count for number in numbers):
        raise FrameError(FRAME_OUT_OF_RANGE)
    per_frame = (
        int(getattr(header, "Rows", 0) or 0)
        * int(getattr(header, "Columns", 0) or 0)
        * int(getattr(header, "SamplesPerPixel", 1) or 1)
        * ((int(getattr(header, "BitsAllocated", 8) or 8) + 7) // 8)
    )
    if per_frame * len(numbers) > MAX_FRAME_BYTES_PER_REQUEST:
        raise FrameError(FRAMES_TOO_LARGE)


@dataclass(frozen=True)
class Frame:
    data: bytes
    transfer_syntax_uid: str


@contextlib.contextmanager
def open_instance(instance: Instance) -> Iterator[BinaryIO]:
    """A seekable binary stream over the stored file of ``instance`` (closed on exit)."""
    reader = instance_file_open(instance)
    with reader:
        if reader.seekable():
            yield reader
            return
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
            shutil.copyfileobj(reader, spool, 1024 * 1024)
            spool.seek(0)
            yield spool  # type: ignore[misc]


def read_header(stream: BinaryIO) -> Dataset:
    """The dataset without its pixel data; ``stream`` is left at the Pixel Data element."""
    return dcmread(stream, stop_before_pixels=True)


class StoredFile:
    """One instance's stored file, read in ranges where its pixel index allows (the index is
    made here for instances stored before indexes existed), whole as a stream where it does not.
    One per request: the header is read once."""

    def __init__(self, instance: Instance) -> None:
        if instance.header_length is None:
            instance_pixel_index_fill(instance=instance)
        self.instance = instance
        self.spans = bytes(instance.frame_spans or b"") if instance.header_length else b""
        self._header_bytes: bytes | None = None
        self._header: Dataset | None = None

    def header_bytes(self) -> bytes:
        """The file up to its Pixel Data element. Precondition: the header is indexed."""
        if self._header_bytes is None:
            length = int(self.instance.header_length or 0)
            self._header_bytes = instance_file_read_range(self.instance, 0, length)
        return self._header_bytes

    def header(self) -> Dataset:
        """The dataset without its pixel data."""
        if self._header is None:
            if self.instance.header_length:
                self._header = read_header(io.BytesIO(self.header_bytes()))
            else:
                with open_instance(self.instance) as stream:
                    self._header = read_header(stream)
        return self._header

    def span(self, number: int) -> tuple[int, int] | None:
        """Where frame ``number`` lies, if it is a frame of the file and indexed."""
        if not 1 <= number <= self.instance.number_of_frames:  # NumberOfFrames, as the header's
            return None
        return span_of(self.spans, number)

    def frame_bytes(self, number: int) -> bytes:
        """Frame ``number`` as stored, from its span. Precondition: ``self.spans``."""
        span = self.span(number)
        if span is None:
            raise FrameError(FRAME_OUT_OF_RANGE)
        start, end = span
        data = instance_file_read_range(self.instance, start, end - start)
        if len(data) != end - start:
            raise FrameError(FRAME_OUT_OF_RANGE)
        return frame_from_span(data, encapsulated=self.instance.frames_encapsulated)

    def single_frame(self, number: int) -> Dataset:
        """The header with frame ``number`` as its only frame: what a decoder needs of the file.
        Precondition: ``self.spans``."""
        single = read_header(io.BytesIO(self.header_bytes()))  # a copy of its own to change
        data = self.frame_bytes(number)
        for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if keyword in single:
                delattr(single, keyword)
        if "NumberOfFrames" in single:
            single.NumberOfFrames = 1
        if self.instance.frames_encapsulated:
            single.PixelData = encapsulate([data])
            single["PixelData"].VR = "OB"
        else:
            single.PixelData = data
            single["PixelData"].VR = "OW" if int(single.get("BitsAllocated") or 8) > 8 else "OB"
        return single


def stored_file(source: Instance | StoredFile) -> StoredFile:
    return source if isinstance(source, StoredFile) else StoredFile(source)


def _native_frame_length(header: Dataset) -> int:
    length = native_frame_length(header)
    if length is None:
        raise FrameError(CANNOT_DECODE.format(ts="bit-packed"))
    return length


def frame_stored(source: Instance | StoredFile, number: int) -> Frame:
    """Frame ``number`` (1-based) exactly as encoded in the file (compressed stays compressed)."""
    stored = stored_file(source)
    if stored.spans:  # the row says what the header would: no need to read it
        transfer_syntax = stored.instance.transfer_syntax_uid or ImplicitVRLittleEndian
        return Frame(data=stored.frame_bytes(number), transfer_syntax_uid=transfer_syntax)
    return _frame_stored_from_stream(stored.instance, number)


def _frame_stored_from_stream(instance: Instance, number: int) -> Frame:
    """Frame ``number`` of a file without a frame index, found by reading the file."""
    with open_instance(instance) as stream:
        header = read_header(stream)
        ts = UID(header.file_meta.get("TransferSyntaxUID") or ImplicitVRLittleEndian)
        count = frame_count(header)
        if not 1 <= number <= count:
            raise FrameError(FRAME_OUT_OF_RANGE)
        if not ts.is_little_endian:
            # Big Endian (retired): rarely seen; decoding gives a correct little-endian frame.
            # (Checked before the tag below, which such a file writes big-endian.)
            return frame_decoded(instance, number)
        element = stream.read(8)
        if len(element) < 8 or element[:4] != _PIXEL_DATA_TAG:
            raise FrameError(NO_PIXEL_DATA)
        if ts == ImplicitVRLittleEndian:
            (length,) = struct.unpack("<I", element[4:8])
        else:
            (length,) = struct.unpack("<I", stream.read(4))  # OB/OW: 2 reserved bytes, then 4
        if ts.is_compressed or length == 0xFFFFFFFF:
            offsets = None
            if "ExtendedOffsetTable" in header and "ExtendedOffsetTableLengths" in header:
                offsets = (header.ExtendedOffsetTable, header.ExtendedOffsetTableLengths)
            try:
                data = get_frame(stream, number - 1, number_of_frames=count, extended_offsets=offsets)
            except (ValueError, KeyError) as error:
                raise FrameError(FRAME_OUT_OF_RANGE) from error
            return Frame(data=data, transfer_syntax_uid=str(ts))
        frame_length = _native_frame_length(header)
        stream.seek(frame_length * (number - 1), io.SEEK_CUR)
        data = stream.read(frame_length)
        if len(data) != frame_length:
            raise FrameError(FRAME_OUT_OF_RANGE)
        return Frame(data=data, transfer_syntax_uid=str(ts))


def _decode(source: BinaryIO | Dataset, index: int, ts: str) -> np.ndarray:
    if not isinstance(source, Dataset):
        source.seek(0)
    try:
        return pixel_array(source, index=index)
    except (NotImplementedError, RuntimeError, ValueError) as error:
        raise FrameError(CANNOT_DECODE.format(ts=ts)) from error


def _decoded_array(source: Instance | StoredFile, number: int) -> tuple[Dataset, np.ndarray]:
    """The header and frame ``number`` decoded: from the frame alone where it is indexed."""
    stored = stored_file(source)
    header = stored.header()
    ts = str(header.file_meta.get("TransferSyntaxUID") or ImplicitVRLittleEndian)
    if not 1 <= number <= frame_count(header):
        raise FrameError(FRAME_OUT_OF_RANGE)
    if stored.spans:
        return header, _decode(stored.single_frame(number), 0, ts)
    with open_instance(stored.instance) as stream:
        return header, _decode(stream, number - 1, ts)


def frame_decoded(source: Instance | StoredFile, number: int) -> Frame:
    """Frame ``number`` decoded to Explicit VR Little Endian pixel bytes.

    Colour images compressed as YBR (JPEG) come back as interleaved RGB, as every decoder
    produces them.
    """
    _, array = _decoded_array(source, number)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return Frame(data=np.ascontiguousarray(little).tobytes(), transfer_syntax_uid=ExplicitVRLittleEndian)


@dataclass(frozen=True)
class Window:
    center: float
    width: float


def parse_window(value: str) -> Window | None:
    """``center,width[,function]`` as in the WADO-RS ``window`` parameter; None if malformed."""
    parts = value.split(",")
    if len(parts) not in (2, 3):
        return None
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return Window(center, width) if width > 0 else None


def _first(value: object) -> float | None:
    """The first number of a (possibly multi-valued) window element, or None."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if value else None
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _to_8bit(array: np.ndarray, header: Dataset, window: Window | None) -> np.ndarray:
    """Grey values mapped to 0..255 by the requested window, the file's, or the full range."""
    values = apply_modality_lut(array, header).astype(np.float32)
    if window is None:
        center, width = _first(header.get("WindowCenter")), _first(header.get("WindowWidth"))
        if center is not None and width and width > 0:
            window = Window(center, width)
    if window is None:
        low, high = float(values.min()), float(values.max())
        window = Window((low + high) / 2, max(high - low, 1.0))
    low = window.center - window.width / 2
    scaled = np.clip((values - low) / window.width, 0.0, 1.0) * 255.0
    if header.get("PhotometricInterpretation") == "MONOCHROME1":
        scaled = 255.0 - scaled
    picture: np.ndarray = scaled.astype(np.uint8)
    return picture


def frame_rendered(
    source: Instance | StoredFile,
    number: int,
    *,
    window: Window | None = None,
    size: tuple[int, int] | None = None,
    image_format: str = "PNG",
) -> bytes:
    """Frame ``number`` as a PNG or JPEG picture, windowed for display, optionally scaled down
    to fit ``size`` (width, height) keeping its proportions."""
    header, array = _decoded_array(source, number)
    if int(header.get("SamplesPerPixel") or 1) == 1:
        picture = Image.fromarray(_to_8bit(array, header, window), mode="L")
    else:
        if array.dtype != np.uint8:
            top = float(array.max()) or 1.0
            array = (array.astype(np.float32) * (255.0 / top)).astype(np.uint8)
        picture = Image.fromarray(array, mode="RGB")
    if size is not None:
        picture.thumbnail(size)
    out = io.BytesIO()
    picture.save(out, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return out.getvalue()
