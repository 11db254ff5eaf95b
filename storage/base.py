"""The interface every storage backend implements, and what they share."""

import abc
import io
import logging
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import BinaryIO

logger = logging.getLogger(__name__)

MiB = 1024 * 1024

# Size of the reads and writes when streaming. Large enough to keep system calls and HTTP
# overhead negligible, small enough that many concurrent uploads stay within a worker's memory.
CHUNK_SIZE = 1 * MiB

# S3 refuses parts smaller than this except the last one; the filesystem backend accepts any size
# but callers must not rely on that, or they would break in production.
MIN_PART_SIZE = 5 * MiB

HEALTH_PREFIX = "_health"


class ObjectNotFound(FileNotFoundError):
    """No object is stored under the key (the key itself is not repeated in the message)."""


class StorageError(OSError):
    """The storage service failed; the message names the error code, never the key."""


class StorageUnavailable(StorageError):
    """The storage itself failed: a full disk, an I/O error, the object store unreachable or
    refusing. Not the file's fault and worth trying again later; callers tell the patient we
    are still working on it, never that their file is bad. Raised by :mod:`storage.tenant` in
    place of the backend's error (kept as ``__cause__``; ``errno`` is the backend's)."""


def storage_unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a storage call, means the storage failed (rather than: no
    such object, or a bad argument)."""
    if isinstance(exc, StorageUnavailable):
        return True
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return False  # ObjectNotFound and its kin: about the key, not the storage
    if isinstance(exc, OSError):
        return True  # ENOSPC, EIO, EDQUOT, a refused connection, S3's StorageError
    # The S3 client's transport errors (urllib3's MaxRetryError, ProtocolError) are not OSErrors.
    return type(exc).__module__.startswith("urllib3")


class MultipartError(ValueError):
    """A multipart upload is unknown, belongs to another key, or its parts do not match."""


class ObjectReader(io.BufferedReader):
    """A read-only, buffered binary stream over one stored object.

    Read it with ``read(n)`` or :meth:`chunks`; never iterate it line by line (binary files may
    have no newline at all, and a "line" would then be the whole file). Closing it releases the
    underlying file or HTTP connection; use it as a context manager.
    """

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the remaining content in pieces of at most ``size`` bytes, then close."""
        try:
            while chunk := self.read(size):
                yield chunk
        finally:
            self.close()


class _Window(io.RawIOBase):
    """A seekable raw stream over ``length`` bytes that start at ``start`` of something bigger:
    positions are the window's own (0 is ``start``), and no read goes past its end. Subclasses
    say how a piece at an absolute place is read (:meth:`_read_at`)."""

    def __init__(self, start: int, length: int) -> None:
        super().__init__()
        self._start = start
        self._length = length
        self._position = 0
        # Readers of file objects look for a name (pydicom reopens a BufferedReader by it to
        # read deferred elements): an empty one says there is no local file to reopen.
        self.name = ""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        if base + offset < 0:
            raise ValueError("Negative seek position.")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        wanted = min(len(buffer), max(0, self._length - self._position))
        if not wanted:
            return 0
        count = self._read_at(self._start + self._position, memoryview(buffer)[:wanted])
        self._position += count
        return count

    def _read_at(self, place: int, target: memoryview) -> int:
        raise NotImplementedError


class _RangedRaw(_Window):
    """A window onto one stored object, each read a :meth:`StorageBackend.read_range`."""

    def __init__(self, backend: "StorageBackend", key: str, size: int, start: int = 0) -> None:
        super().__init__(start, size)
        self._backend = backend
        self._key = key

    def _read_at(self, place: int, target: memoryview) -> int:
        data = self._backend.read_range(self._key, place, len(target))
        target[: len(data)] = data
        return len(data)


class RawSlice(_Window):
    """A window onto a seekable raw stream (a local file), closed with it."""

    def __init__(self, raw: io.RawIOBase, start: int, length: int) -> None:
        super().__init__(start, length)
        self._raw = raw

    def _read_at(self, place: int, target: memoryview) -> int:
        self._raw.seek(place)
        return self._raw.readinto(target) or 0

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


def read_exactly(stream: BinaryIO, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``stream``; return how many bytes were read (less only at EOF).

    Reads into a preallocated buffer so that a part costs its size in memory once, not twice.
    """
    view = memoryview(buffer)
    filled = 0
    readinto = getattr(stream, "readinto", None)
    while filled < len(buffer):
        if readinto is not None:
            count = readinto(view[filled:])
        else:
            data = stream.read(len(buffer) - filled)
            count = len(data)
            view[filled : filled + count] = data
        if not count:
            break
        filled += count
    return filled


def check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise ValueError("A range starts at 0 or later and is 0 or more bytes long.")


def check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= 10_000:
        raise MultipartError("Part numbers go from 1 to 10000.")


def ordered_parts(parts: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """Parts sorted by number, refusing an empty list and duplicate numbers."""
    ordered = sorted((number, etag.strip('"')) for number, etag in parts)
    numbers = [number for number, _ in ordered]
    if not ordered or len(set(numbers)) != len(numbers):
        raise MultipartError("Parts must be listed once each.")
    for number in numbers:
        check_part_number(number)
    return ordered


class StorageBackend(abc.ABC):
    """Where files live. Keys are validated by :mod:`storage.keys` before any I/O.

    Every write is atomic: an object either exists with its full content or not at all, even if
    the source stream raises midway. Implementations never log keys (they may be derived from
    patient data despite the rules) and never read a whole stream into memory.
    """

    @abc.abstractmethod
    def save(self, key: str, stream: BinaryIO, length: int | None = None) -> int:
        """Store everything ``stream`` yields under ``key``, replacing any object there.

        ``length``, when given, must be the exact number of bytes the stream will yield; it is
        checked and a mismatch raises ``ValueError`` with nothing stored. Returns bytes written.
        """

    @abc.abstractmethod
    def open(self, key: str) -> ObjectReader:
        """Return a streaming reader; raise :class:`ObjectNotFound` if there is no object."""

    def read_bytes(self, key: str) -> bytes:
        """Return the whole content. Only for small objects (logos, probes, test fixtures)."""
        with self.open(key) as reader:
            return reader.read()

    @abc.abstractmethod
    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """The ``length`` bytes that start at byte ``offset``: fewer where the object ends
        sooner, none from its end on. Only those bytes leave the store (an HTTP range GET on S3),
        so a frame of a 100 MiB file costs the frame. Raise :class:`ObjectNotFound` if there is
        no object.

        Precondition: ``offset`` and ``length`` are not negative, and ``length`` is what the
        caller is willing to hold in memory.
        """

    def open_range(self, key: str, offset: int, length: int) -> ObjectReader:
        """A streaming reader of the ``length`` bytes that start at byte ``offset`` (fewer where
        the object ends sooner): one object kept whole and read in parts, such as an image
        stored where it lies inside the batch of files it came in. Seekable where the backend
        can seek, positions counted from ``offset``. Raise :class:`ObjectNotFound` if there is
        no object.

        Precondition: ``offset`` and ``length`` are not negative.
        """
        check_range(offset, length)
        return self.open_seekable(key, buffer_size=CHUNK_SIZE, offset=offset, length=length)

    def open_seekable(
        self, key: str, *, buffer_size: int = 64 * 1024, offset: int = 0, length: int | None = None
    ) -> ObjectReader:
        """A seekable reader whose reads are ranged reads of ``buffer_size`` or more bytes: of
        the whole object, or of ``length`` bytes from ``offset`` (positions counted from there).

        For parsers that seek (pydicom) over objects too large to fetch whole: a seek costs
        nothing, a read fetches from the new place on. Backends whose :meth:`open` can already
        seek return that instead.
        """
        check_range(offset, length or 0)
        size = self.size(key)
        end = size if length is None else min(size, offset + length)
        return ObjectReader(_RangedRaw(self, key, max(0, end - offset), start=offset), buffer_size)

    @abc.abstractmethod
    def move(self, src_key: str, dst_key: str) -> None:
        """Put the object under ``src_key`` under ``dst_key`` instead, replacing any object there.

        Raise :class:`ObjectNotFound` (with nothing changed) if there is no object under
        ``src_key``. Durable once it returns: after a crash the object is under ``dst_key``, or
        still under ``src_key``; a crash midway may leave it under both, never under neither.
        """

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; raise :class:`ObjectNotFound` if there is no object."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object if present; deleting a missing key is not an error (idempotent)."""

    @abc.abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]:
        """Yield every key under the folder ``prefix`` (``""`` for all), in no set order."""

    @abc.abstractmethod
    def total_size(self, prefix: str) -> int:
        """Sum of the sizes of every object under the folder ``prefix``."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder ``prefix``; return how many were deleted.

        Precondition: ``prefix`` is not empty (wiping the whole store is never what a caller means).
        """

    @abc.abstractmethod
    def multipart_start(self, key: str) -> str:
        """Begin a multipart upload to ``key``; return its upload id.

        Precondition for the parts that follow: every part except the last is at least
        :data:`MIN_PART_SIZE` (5 MiB) bytes, as S3 requires. Nothing is visible under ``key``
        until :meth:`multipart_complete` succeeds.
        """

    @abc.abstractmethod
    def multipart_put(self, key: str, upload_id: str, part_number: int, stream: BinaryIO, length: int) -> str:
        """Upload part ``part_number`` (1..10000) of exactly ``length`` bytes; return its etag.

        Putting the same part number again replaces it (so a retried chunk is harmless).
        """

    @abc.abstractmethod
    def multipart_complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        """Assemble the ``(part_number, etag)`` parts in ascending order; return the object size.

        Raise :class:`MultipartError` if the upload is unknown or a part or etag does not match.
        """

    @abc.abstractmethod
    def multipart_abort(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts; aborting an unknown upload is not an error."""

    @abc.abstractmethod
    def signed_url(self, key: str, *, expires: timedelta, filename: str | None = None) -> str:
        """A URL that downloads the object without a session, valid for ``expires``.

        ``filename`` is the name the browser saves it under. It travels in the URL, so it must be
        a generic name ("opinion.pdf"), never one derived from patient data.
        """

    @abc.abstractmethod
    def presigned_put_url(self, key: str, *, expires: timedelta) -> str | None:
        """A URL a client can PUT the object to directly, or None if the backend has none."""

    def health_check(self) -> bool:
        """Write, read back and delete a tiny probe object; True if all three worked.

        Never raises: this feeds /healthz, which must answer even when storage is down.
        """
        key = f"{HEALTH_PREFIX}/{uuid.uuid4().hex}"
        payload = b"secondread-health-probe"
        try:
            self.save(key, io.BytesIO(payload), len(payload))
            ok = self.read_bytes(key) == payload
            self.delete(key)
            return ok and not self.exists(key)
        except Exception as exc:
            # The type only: messages of storage errors may carry the key.
            logger.warning("storage health check failed: %s", type(exc).__name__)
            return False
