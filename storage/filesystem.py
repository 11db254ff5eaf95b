"""Files under a local folder: the embedded default, and the backend of single-machine installs.

Longer than most modules (~460 lines) on purpose: one backend implementing the whole
:class:`storage.base.StorageBackend` interface (objects, multipart uploads, moves, signed URLs),
with the crash-safe file helpers only it uses (fsync, atomic concatenation, part records);
splitting it would hide which of the interface's promises it keeps and how.
"""

# long module: one backend implementing the whole StorageBackend interface with the
# crash-safe file helpers only it uses; see the docstring.

import contextlib
import hashlib
import io
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from django.urls import reverse

from storage.base import (
    CHUNK_SIZE,
    MIN_PART_SIZE,
    MultipartError,
    ObjectNotFound,
    ObjectReader,
    RawSlice,
    StorageBackend,
    check_part_number,
    check_range,
    ordered_parts,
)
from storage.keys import InvalidKey, validate_key, validate_prefix
from storage.tokens import download_token_mint

# Staging for multipart uploads lives under a dot-folder: keys can never start with a dot
# (storage.keys), so it can neither be listed nor addressed as an object.
_MULTIPART_DIR = ".multipart"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}\Z")


class FilesystemBackend(StorageBackend):
    """Objects are files at ``root/<key>``; writes go to a hidden temp file then ``os.replace``.

    Precondition: ``root`` is on one filesystem (``os.replace`` is only atomic within one) and
    is not shared with anything else: every file under it is taken to be an object.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # -- paths ---------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _folder(self, prefix: str) -> Path:
        prefix = validate_prefix(prefix)
        return self.root / prefix if prefix else self.root

    def _staging(self, key: str, upload_id: str) -> Path:
        """The staging folder of an upload, after checking it was started for this very key.

        The check matters for tenant isolation: upload ids are global to the backend, so without
        it a tenant who learnt another tenant's upload id could add parts to, or complete, it.
        """
        validate_key(key)
        if not _UPLOAD_ID.match(upload_id):
            raise MultipartError("Unknown multipart upload.")
        staging = self.root / _MULTIPART_DIR / upload_id
        try:
            started_for = (staging / "key").read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MultipartError("Unknown multipart upload.") from None
        if started_for != key:
            raise MultipartError("Unknown multipart upload.")
        return staging

    # -- writing -------------------------------------------------------------------------------

    def _write_atomically(self, target: Path, chunks: Iterator[bytes]) -> int:
        """Write ``chunks`` to ``target`` all or nothing; return the bytes written.

        The temp file sits beside the target so ``os.replace`` stays on one filesystem, and it
        is fsync'ed first so a crash cannot leave a renamed but empty file.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".{uuid.uuid4().hex}.tmp"
        written = 0
        try:
            with open(temp, "xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return written

    def save(self, key: str, stream: BinaryIO, length: int | None = None) -> int:
        return self._write_atomically(self._path(key), _stream_chunks(stream, length))

    def multipart_start(self, key: str) -> str:
        validate_key(key)
        upload_id = uuid.uuid4().hex
        staging = self.root / _MULTIPART_DIR / upload_id
        staging.mkdir(parents=True)
        (staging / "key").write_text(key, encoding="utf-8")
        return upload_id

    def multipart_put(self, key: str, upload_id: str, part_number: int, stream: BinaryIO, length: int) -> str:
        """Store one part; see "Multipart uploads" in :func:`_part_record` for the layout.

        The etag is a fresh random token per put (not an md5 of the bytes: hashing cost as
        much as writing), so a listed etag names exactly one put of that part.
        """
        staging = self._staging(key, upload_id)
        check_part_number(part_number)
        etag = uuid.uuid4().hex
        offset = _claim_in_place(staging, part_number)
        if offset is not None:
            length = _write_in_place(staging / _DATA_FILE, offset, _stream_chunks(stream, length))
            _record_write(staging, _PartRecord(part_number, etag, _IN_PLACE, offset, length))
        else:
            written = self._write_atomically(
                staging / _part_file_name(part_number, etag), _stream_chunks(stream, length)
            )
            previous = _part_record(staging, part_number)
            _record_write(staging, _PartRecord(part_number, etag, _OWN_FILE, 0, written))
            # The replaced version is unreachable now (its record is gone); free its bytes.
            if previous is not None and previous.place == _OWN_FILE:
                previous.path(staging).unlink(missing_ok=True)
        return etag

    def multipart_complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        staging = self._staging(key, upload_id)
        ordered = ordered_parts(parts)
        records: list[_PartRecord] = []
        for index, (number, etag) in enumerate(ordered):
            record = _part_record(staging, number)
            if record is None or record.etag != etag:
                raise MultipartError("A part of the upload is missing or does not match.")
            # Same rule as S3, so that code tested on the filesystem works in production.
            if index < len(ordered) - 1 and record.length < MIN_PART_SIZE:
                raise MultipartError("Every part but the last must be at least 5 MiB.")
            records.append(record)
        target = self._path(key)
        total = sum(record.length for record in records)
        data = staging / _DATA_FILE
        # The usual case (parts sent in order, once each): the parts already lie end to end in
        # the data file, which becomes the object by a rename; nothing is copied.
        in_place = all(record.place == _IN_PLACE for record in records) and all(
            record.offset == sum(earlier.length for earlier in records[:index])
            for index, record in enumerate(records)
        )
        if in_place:
            _data_finish(data, total)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(data, target)
            # The rename is what makes the object exist: durable before the caller says so.
            _fsync_folder(target.parent)
        else:
            _concatenate_atomically(
                target, [(record.path(staging), record.offset, record.length) for record in records]
            )
        shutil.rmtree(staging, ignore_errors=True)
        return total

    def multipart_abort(self, key: str, upload_id: str) -> None:
        try:
            staging = self._staging(key, upload_id)
        except MultipartError:
            return
        shutil.rmtree(staging, ignore_errors=True)

    def move(self, src_key: str, dst_key: str) -> None:
        """A rename within the root (no byte is copied), made durable by syncing the folder."""
        source, target = self._path(src_key), self._path(dst_key)
        if source == target:
            if not source.is_file():
                raise ObjectNotFound("No stored object under this key.")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not source.is_file():
                raise FileNotFoundError
            os.replace(source, target)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound("No stored object under this key.") from None
        # The rename is journalled as one change (both folders): syncing the target's folder
        # makes it durable, so a crash cannot take it back once callers rely on the new key.
        _fsync_folder(target.parent)

    # -- reading -------------------------------------------------------------------------------

    def _open_raw(self, key: str) -> io.FileIO:
        try:
            return open(self._path(key), "rb", buffering=0)  # the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound("No stored object under this key.") from None

    def open(self, key: str) -> ObjectReader:
        return ObjectReader(self._open_raw(key), CHUNK_SIZE)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        # Straight from the file: a buffered read would read ahead past the range.
        with self._open_raw(key) as raw:
            raw.seek(offset)
            pieces = []
            while length > 0 and (piece := raw.read(length)):
                pieces.append(piece)
                length -= len(piece)
            return b"".join(pieces)

    def open_seekable(
        self, key: str, *, buffer_size: int = 64 * 1024, offset: int = 0, length: int | None = None
    ) -> ObjectReader:
        check_range(offset, length or 0)
        raw = self._open_raw(key)
        if not offset and length is None:
            return ObjectReader(raw, buffer_size)
        size = os.fstat(raw.fileno()).st_size
        end = size if length is None else min(size, offset + length)
        return ObjectReader(RawSlice(raw, offset, max(0, end - offset)), buffer_size)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound("No stored object under this key.")
        return path.stat().st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_file():
            path.unlink(missing_ok=True)

    def _walk(self, prefix: str) -> Iterator[Path]:
        folder = self._folder(prefix)
        for directory, subdirectories, files in os.walk(folder):
            # Prune in place so os.walk never descends into staging or other hidden folders.
            subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
            for name in files:
                if not name.startswith("."):
                    yield Path(directory) / name

    def list_keys(self, prefix: str) -> Iterator[str]:
        for path in self._walk(prefix):
            yield path.relative_to(self.root).as_posix()

    def total_size(self, prefix: str) -> int:
        return sum(path.stat().st_size for path in self._walk(prefix))

    def delete_prefix(self, prefix: str) -> int:
        if not validate_prefix(prefix):
            raise InvalidKey("Refusing to delete every stored object.")
        deleted = 0
        for path in list(self._walk(prefix)):
            path.unlink(missing_ok=True)
            deleted += 1
        self._remove_empty_folders(self._folder(prefix))
        return deleted

    def _remove_empty_folders(self, folder: Path) -> None:
        """Remove ``folder`` and its subfolders if they hold nothing (deepest first)."""
        if not folder.is_dir():
            return
        for directory, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
            # Not empty (say, the hidden temp file of a concurrent save): keep it.
            with contextlib.suppress(OSError):
                os.rmdir(directory)

    # -- URLs ----------------------------------------------------------------------------------

    def signed_url(self, key: str, *, expires: timedelta, filename: str | None = None) -> str:
        """A path on the current site (``/files/signed/<token>``) served by ``storage.views``.

        Precondition: ``storage.urls`` is included in the URLconf in use under the ``storage``
        namespace, and the key's first segment is the tenant schema the link will be used on.
        """
        token = download_token_mint(key=validate_key(key), expires=expires, filename=filename)
        return reverse("storage:signed_download", kwargs={"token": token})

    def presigned_put_url(self, key: str, *, expires: timedelta) -> str | None:
        # Uploads to the filesystem go through the application (the tus endpoint) instead.
        validate_key(key)
        return None


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _stream_chunks(stream: BinaryIO, length: int | None) -> Iterator[bytes]:
    """Yield ``stream`` in chunks; raise ``ValueError`` at the end if ``length`` does not match.

    Raising from inside the generator makes the atomic writer discard the temp file.
    """
    total = 0
    while chunk := stream.read(CHUNK_SIZE):
        total += len(chunk)
        if length is not None and total > length:
            raise ValueError("The stream is longer than its declared length.")
        yield chunk
    if length is not None and total != length:
        raise ValueError("The stream is shorter than its declared length.")


def _concatenate_atomically(target: Path, pieces: list[tuple[Path, int, int]]) -> int:
    """Join the ``(file, offset, length)`` pieces into ``target`` all or nothing, copying in the
    kernel (``os.copy_file_range``) so large uploads are not pushed through Python buffers."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{uuid.uuid4().hex}.tmp"
    written = 0
    try:
        with open(temp, "xb") as out:
            for path, offset, length in pieces:
                with open(path, "rb") as part:
                    position, end = offset, offset + length
                    while position < end:
                        copied = _copy_range(part, out, position, end - position)
                        if copied == 0:
                            raise MultipartError("A part of the upload is missing or does not match.")
                        position += copied
                        written += copied
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return written


def _copy_range(source: BinaryIO, out: BinaryIO, offset: int, remaining: int) -> int:
    count = min(remaining, 1 << 30)
    try:
        return os.copy_file_range(source.fileno(), out.fileno(), count, offset)
    except OSError:  # not supported across these filesystems: copy through a buffer
        chunk = os.pread(source.fileno(), min(count, CHUNK_SIZE), offset)
        out.write(chunk)
        return len(chunk)


# -- multipart uploads ---------------------------------------------------------------------------
#
# Layout of an upload's staging folder (``.multipart/<upload id>/``):
#   key                   the key the upload was started for;
#   data                  parts written in place, end to end, in part order;
#   part-NNNNN.claim      part NNNNN has (or had) its place in ``data`` (created exclusively);
#   part-NNNNN-<etag>     a part that could not go in place (out of order, or put again);
#   part-NNNNN.etag       the record of part NNNNN's current version: "<etag> <place> <offset>
#                         <length>" (place "data" or "file"); parts put before this layout hold
#                         a bare md5 here, their bytes in ``part-NNNNN``.
#
# A part goes in place when it is put for the first time and its predecessor lies in place:
# it starts where the predecessor ends. Claiming that region with an exclusive create means two
# puts never write the same bytes. Completing parts that all lie in place, end to end, is a
# truncate, an fsync and a rename: no copy. Anything else (a part put again, parts out of
# order) is joined by copying, as before.
#
# Crash safety (a process or the whole machine dying): a part's bytes are fsync'ed before its
# record is written, so a record never points at bytes that may be lost; a part put again goes
# to a new file and its record is replaced atomically (os.replace), so the previous version
# stays whole until then. A record lost in a crash (they are not fsync'ed: the loss is always
# detected) makes completing with that part's etag fail with MultipartError, never join wrong
# bytes. The object itself appears only when complete, by rename, after an fsync.

_DATA_FILE = "data"
_IN_PLACE = "data"
_OWN_FILE = "file"
_ETAG = re.compile(r"^[0-9a-f]{32}\Z")


@dataclass(frozen=True)
class _PartRecord:
    number: int
    etag: str
    place: str  # _IN_PLACE or _OWN_FILE
    offset: int  # in the data file (in place); 0 in an own file
    length: int
    legacy: bool = False

    def path(self, staging: Path) -> Path:
        if self.place == _IN_PLACE:
            return staging / _DATA_FILE
        if self.legacy:
            return staging / f"part-{self.number:05d}"
        return staging / _part_file_name(self.number, self.etag)


def _part_file_name(number: int, etag: str) -> str:
    return f"part-{number:05d}-{etag}"


def _record_path(staging: Path, number: int) -> Path:
    return staging / f"part-{number:05d}.etag"


def _part_record(staging: Path, number: int) -> _PartRecord | None:
    """The record of part ``number``, or None if it has none (or an unreadable one)."""
    try:
        fields = _record_path(staging, number).read_text(encoding="ascii").split()
    except (FileNotFoundError, UnicodeDecodeError):
        fields = []
    legacy = staging / f"part-{number:05d}"
    if not fields and legacy.is_file():  # written before parts had records
        fields = [_md5_of(legacy)]
    if len(fields) == 1 and _ETAG.match(fields[0]) and legacy.is_file():
        return _PartRecord(number, fields[0], _OWN_FILE, 0, legacy.stat().st_size, legacy=True)
    if len(fields) != 4 or not _ETAG.match(fields[0]) or fields[1] not in (_IN_PLACE, _OWN_FILE):
        return None
    try:
        offset, length = int(fields[2]), int(fields[3])
    except ValueError:
        return None
    record = _PartRecord(number, fields[0], fields[1], offset, length)
    path = record.path(staging)
    if not path.is_file() or path.stat().st_size < offset + length:
        return None  # its bytes are gone (say, lost in a crash): the part is missing
    return record


def _record_write(staging: Path, record: _PartRecord) -> None:
    """Replace the record of a part atomically (a reader sees the old one or the new one)."""
    temp = staging / f".{uuid.uuid4().hex}.tmp"
    temp.write_text(f"{record.etag} {record.place} {record.offset} {record.length}", encoding="ascii")
    os.replace(temp, _record_path(staging, record.number))


def _claim_in_place(staging: Path, number: int) -> int | None:
    """The offset in the data file where part ``number`` may be written, now reserved for this
    put; None if it must go to a file of its own."""
    if number == 1:
        offset = 0
    else:
        previous = _part_record(staging, number - 1)
        if previous is None or previous.place != _IN_PLACE:
            return None
        offset = previous.offset + previous.length
    try:
        (staging / f"part-{number:05d}.claim").touch(exist_ok=False)
    except FileExistsError:  # put before (or being put right now): never write its bytes twice
        return None
    return offset


def _write_in_place(data: Path, offset: int, chunks: Iterator[bytes]) -> int:
    """Write ``chunks`` into ``data`` from ``offset`` and fsync; return the bytes written.

    Precondition: the region was claimed by :func:`_claim_in_place`, so no one else writes it.
    If ``chunks`` raises, the region holds a partial part with no record: the part is missing.
    """
    descriptor = os.open(data, os.O_WRONLY | os.O_CREAT, 0o666)
    written = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                count = os.pwrite(descriptor, view, offset + written)
                view = view[count:]
                written += count
        os.fdatasync(descriptor)
    finally:
        os.close(descriptor)
    return written


def _data_finish(data: Path, total: int) -> None:
    """Cut the data file to the object's size (a part put but not listed may lie past it).

    Every part's bytes were synced when it was put (fdatasync, which syncs the file's size
    too), so a data file of exactly the object's size needs no further sync.
    """
    with open(data, "r+b") as out:
        size = os.fstat(out.fileno()).st_size
        if size < total:
            raise MultipartError("A part of the upload is missing or does not match.")
        if size > total:
            out.truncate(total)
            os.fsync(out.fileno())


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as part:
        while chunk := part.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()
