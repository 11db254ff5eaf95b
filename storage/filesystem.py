"""Files under a local folder: the embedded default, and the backend of single-machine installs."""

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
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
    StorageBackend,
    check_part_number,
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

    def _write_atomically(self, target: Path, chunks: Iterator[bytes]) -> tuple[int, str]:
        """Write ``chunks`` to ``target`` all or nothing; return (bytes written, md5 hex).

        The temp file sits beside the target so ``os.replace`` stays on one filesystem, and it
        is fsync'ed first so a crash cannot leave a renamed but empty file.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".{uuid.uuid4().hex}.tmp"
        digest = hashlib.md5(usedforsecurity=False)
        written = 0
        try:
            with open(temp, "xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return written, digest.hexdigest()

    def save(self, key: str, stream: BinaryIO, length: int | None = None) -> int:
        written, _ = self._write_atomically(self._path(key), _stream_chunks(stream, length))
        return written

    def multipart_start(self, key: str) -> str:
        validate_key(key)
        upload_id = uuid.uuid4().hex
        staging = self.root / _MULTIPART_DIR / upload_id
        staging.mkdir(parents=True)
        (staging / "key").write_text(key, encoding="utf-8")
        return upload_id

    def multipart_put(self, key: str, upload_id: str, part_number: int, stream: BinaryIO, length: int) -> str:
        staging = self._staging(key, upload_id)
        check_part_number(part_number)
        part = staging / f"part-{part_number:05d}"
        _, etag = self._write_atomically(part, _stream_chunks(stream, length))
        # Keep the part's checksum so completing never reads the bytes a second time.
        part.with_suffix(".etag").write_text(etag, encoding="ascii")
        return etag

    def multipart_complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        staging = self._staging(key, upload_id)
        ordered = ordered_parts(parts)
        paths = [staging / f"part-{number:05d}" for number, _ in ordered]
        for index, ((_, etag), path) in enumerate(zip(ordered, paths, strict=True)):
            if not path.is_file() or _etag_of(path) != etag:
                raise MultipartError("A part of the upload is missing or does not match.")
            # Same rule as S3, so that code tested on the filesystem works in production.
            if index < len(paths) - 1 and path.stat().st_size < MIN_PART_SIZE:
                raise MultipartError("Every part but the last must be at least 5 MiB.")
        written = _concatenate_atomically(self._path(key), paths)
        shutil.rmtree(staging, ignore_errors=True)
        return written

    def multipart_abort(self, key: str, upload_id: str) -> None:
        try:
            staging = self._staging(key, upload_id)
        except MultipartError:
            return
        shutil.rmtree(staging, ignore_errors=True)

    # -- reading -------------------------------------------------------------------------------

    def open(self, key: str) -> ObjectReader:
        try:
            raw = open(self._path(key), "rb", buffering=0)  # noqa: SIM115 - the reader owns it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound("No stored object under this key.") from None
        return ObjectReader(raw, CHUNK_SIZE)

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


def _concatenate_atomically(target: Path, paths: list[Path]) -> int:
    """Join the parts into ``target`` all or nothing, copying in the kernel
    (``os.copy_file_range``) so large uploads are not pushed through Python buffers."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{uuid.uuid4().hex}.tmp"
    written = 0
    try:
        with open(temp, "xb") as out:
            for path in paths:
                with open(path, "rb") as part:
                    remaining = os.fstat(part.fileno()).st_size
                    while remaining > 0:
                        copied = _copy_range(part, out, remaining)
                        if copied == 0:
                            raise OSError("A part ended before its size.")
                        remaining -= copied
                        written += copied
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return written


def _copy_range(source: BinaryIO, out: BinaryIO, remaining: int) -> int:
    try:
        return os.copy_file_range(source.fileno(), out.fileno(), min(remaining, 1 << 30))
    except OSError:  # not supported across these filesystems: copy through a buffer
        chunk = source.read(min(remaining, CHUNK_SIZE))
        out.write(chunk)
        return len(chunk)


def _etag_of(path: Path) -> str:
    sidecar = path.with_suffix(".etag")
    return sidecar.read_text(encoding="ascii") if sidecar.is_file() else _md5_of(path)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as part:
        while chunk := part.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()
