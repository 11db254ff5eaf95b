"""Objects in a MinIO / S3 bucket through the ``minio`` client: the production backend."""

import io
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import BinaryIO, cast

import urllib3
from django.utils.http import content_disposition_header
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.sseconfig import Rule, SSEConfig

from storage.base import (
    CHUNK_SIZE,
    MIN_PART_SIZE,
    MultipartError,
    ObjectNotFound,
    ObjectReader,
    StorageBackend,
    StorageError,
    check_part_number,
    check_range,
    ordered_parts,
    read_exactly,
)
from storage.keys import InvalidKey, validate_key, validate_prefix

logger = logging.getLogger(__name__)

_OCTET_STREAM = "application/octet-stream"
_MISSING_OBJECT_CODES = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_DELETE_BATCH = 1000  # the most S3 accepts in one DeleteObjects request


class _ResponseStream(io.RawIOBase):
    """A raw stream over a urllib3 response that hands its connection back to the pool on close."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        super().__init__()
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        return self._response.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            try:
                self._response.close()
                self._response.release_conn()
            finally:
                super().close()


class S3Backend(StorageBackend):
    """Objects are ``bucket/<key>``. The bucket is created on first use if it does not exist.

    Uses minio's low-level multipart calls (``_create_multipart_upload``, ``_upload_part``...,
    minio 7.2): they are private, but ``put_object`` would hold several parts in memory at once in
    its own thread pool, and the chunked-upload endpoint needs parts it can send one at a time.

    Writes are atomic because S3 makes an object visible only when its single PUT or its
    multipart upload completes; a failed :meth:`save` aborts its multipart upload.
    Memory per :meth:`save` is one part (``part_size``, at least 5 MiB), not the file.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool,
        region: str,
        part_size: int = MIN_PART_SIZE,
        encrypt: bool = False,
    ) -> None:
        """Precondition: ``endpoint`` is ``host[:port]`` without a scheme (``secure`` picks it).

        ``encrypt``: the bucket's default encryption is set to SSE-S3 (AES-256, keys held by the
        S3 service) if it has none, so every object is encrypted at rest, including multipart
        uploads and server-side copies, without a header on each request.
        """
        if part_size < MIN_PART_SIZE:
            raise ValueError("S3 parts must be at least 5 MiB.")
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            # Passing the region avoids a GetBucketLocation round trip before each request.
            region=region or None,
        )
        self.bucket = bucket
        self._part_size = part_size
        self._ensure_bucket(region)
        if encrypt:
            self._ensure_encryption()

    def _ensure_bucket(self, region: str) -> None:
        if self._client.bucket_exists(self.bucket):
            return
        try:
            self._client.make_bucket(self.bucket, location=region or None)
        except S3Error as exc:
            # Another process started at the same moment and won the race: that is fine.
            if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    def _ensure_encryption(self) -> None:
        if self._client.get_bucket_encryption(self.bucket) is None:
            self._client.set_bucket_encryption(self.bucket, SSEConfig(Rule.new_sse_s3_rule()))

    def bucket_encryption(self) -> str | None:
        """The bucket's default encryption algorithm ("AES256", "aws:kms"), or None."""
        config = self._client.get_bucket_encryption(self.bucket)
        if config is None or config.rule is None:
            return None
        return config.rule.sse_algorithm

    # -- writing -------------------------------------------------------------------------------

    def save(self, key: str, stream: BinaryIO, length: int | None = None) -> int:
        validate_key(key)
        buffer = bytearray(self._part_size)
        view = memoryview(buffer)
        filled = read_exactly(stream, buffer)
        if filled < self._part_size:
            # The whole object fits in one request: a single PUT, atomic by itself.
            _check_length(filled, length)
            try:
                self._client._put_object(
                    self.bucket, key, _body(view[:filled]), headers={"Content-Type": _OCTET_STREAM}
                )
            except S3Error as exc:
                raise _without_key(exc) from None
            return filled
        upload_id = self.multipart_start(key)
        try:
            parts: list[tuple[int, str]] = []
            total = 0
            while filled:
                part_number = len(parts) + 1
                etag = self._client._upload_part(
                    self.bucket, key, _body(view[:filled]), None, upload_id, part_number
                )
                parts.append((part_number, etag))
                total += filled
                if length is not None and total > length:
                    raise ValueError("The stream is longer than its declared length.")
                filled = read_exactly(stream, buffer)
            _check_length(total, length)
            self._complete(key, upload_id, parts)
        except S3Error as exc:
            self._abort_quietly(key, upload_id)
            raise _without_key(exc) from None
        except BaseException:
            self._abort_quietly(key, upload_id)
            raise
        return total

    def multipart_start(self, key: str) -> str:
        validate_key(key)
        return self._client._create_multipart_upload(self.bucket, key, {"Content-Type": _OCTET_STREAM})

    def multipart_put(self, key: str, upload_id: str, part_number: int, stream: BinaryIO, length: int) -> str:
        """Upload one part. Memory: ``length`` bytes, so callers keep parts to a few MiB."""
        validate_key(key)
        check_part_number(part_number)
        buffer = bytearray(length)
        filled = read_exactly(stream, buffer)
        if filled != length or stream.read(1):
            raise ValueError("The part does not have its declared length.")
        try:
            return self._client._upload_part(
                self.bucket, key, _body(memoryview(buffer)), None, upload_id, part_number
            )
        except S3Error:
            raise MultipartError("Unknown multipart upload.") from None

    def multipart_complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        validate_key(key)
        self._complete(key, upload_id, ordered_parts(parts))
        return self.size(key)

    def _complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        try:
            self._client._complete_multipart_upload(
                self.bucket, key, upload_id, [Part(number, etag) for number, etag in parts]
            )
        except S3Error:
            raise MultipartError(
                "The upload is unknown, or a part is missing, too small or does not match."
            ) from None

    def multipart_abort(self, key: str, upload_id: str) -> None:
        validate_key(key)
        try:
            self._client._abort_multipart_upload(self.bucket, key, upload_id)
        except S3Error as exc:
            if exc.code != "NoSuchUpload":
                raise _without_key(exc) from None

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        try:
            self._client._abort_multipart_upload(self.bucket, key, upload_id)
        except Exception as exc:
            # The original error matters more; a leftover upload is reaped by a lifecycle rule.
            logger.warning("could not abort a failed multipart upload: %s", type(exc).__name__)

    # -- reading -------------------------------------------------------------------------------

    def open(self, key: str) -> ObjectReader:
        validate_key(key)
        try:
            response = self._client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING_OBJECT_CODES:
                raise ObjectNotFound("No stored object under this key.") from None
            raise _without_key(exc) from None
        return ObjectReader(_ResponseStream(response), CHUNK_SIZE)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """One GET with ``Range: bytes=offset-(offset+length-1)``: only the range is sent."""
        validate_key(key)
        check_range(offset, length)
        if length == 0:
            self.size(key)  # ObjectNotFound if there is nothing (minio reads 0 as "to the end")
            return b""
        response = self._range_get(key, offset, length)
        if response is None:
            return b""
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def open_range(self, key: str, offset: int, length: int) -> ObjectReader:
        """One ranged GET, streamed (see :meth:`read_range`)."""
        validate_key(key)
        check_range(offset, length)
        response = self._range_get(key, offset, length) if length else None
        if response is None:  # nothing to read (a missing object still raises)
            return super().open_range(key, offset, 0)
        return ObjectReader(_ResponseStream(response), CHUNK_SIZE)

    def _range_get(self, key: str, offset: int, length: int) -> urllib3.BaseHTTPResponse | None:
        """The answer to a GET of ``length`` (> 0) bytes from ``offset``; None if the object
        ends before ``offset``."""
        try:
            return self._client.get_object(self.bucket, key, offset=offset, length=length)
        except S3Error as exc:
            if exc.code in _MISSING_OBJECT_CODES:
                raise ObjectNotFound("No stored object under this key.") from None
            if exc.code == "InvalidRange":
                return None
            raise _without_key(exc) from None

    def move(self, src_key: str, dst_key: str) -> None:
        """A server-side copy (no byte passes through us; minio composes objects over 5 GiB)
        then a delete: a crash between the two leaves the object under both keys."""
        validate_key(src_key)
        validate_key(dst_key)
        if src_key == dst_key:
            self.size(src_key)  # ObjectNotFound if there is nothing to move
            return
        try:
            self._client.copy_object(self.bucket, dst_key, CopySource(self.bucket, src_key))
        except S3Error as exc:
            if exc.code in _MISSING_OBJECT_CODES:
                raise ObjectNotFound("No stored object under this key.") from None
            raise _without_key(exc) from None
        self.delete(src_key)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        validate_key(key)
        try:
            stat = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING_OBJECT_CODES:
                raise ObjectNotFound("No stored object under this key.") from None
            raise _without_key(exc) from None
        return int(stat.size or 0)

    def delete(self, key: str) -> None:
        validate_key(key)
        self._client.remove_object(self.bucket, key)

    def _objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        prefix = validate_prefix(prefix)
        # A trailing slash makes the prefix a folder, as on the filesystem: "a/b" must not match
        # "a/bc/...".
        listing = self._client.list_objects(
            self.bucket, prefix=f"{prefix}/" if prefix else None, recursive=True
        )
        for item in listing:
            if not item.is_dir and item.object_name is not None:
                yield item.object_name, int(item.size or 0)

    def list_keys(self, prefix: str) -> Iterator[str]:
        for key, _ in self._objects(prefix):
            yield key

    def total_size(self, prefix: str) -> int:
        return sum(size for _, size in self._objects(prefix))

    def delete_prefix(self, prefix: str) -> int:
        if not validate_prefix(prefix):
            raise InvalidKey("Refusing to delete every stored object.")
        deleted = 0
        batch: list[DeleteObject] = []
        for key, _ in self._objects(prefix):
            batch.append(DeleteObject(key))
            if len(batch) == _DELETE_BATCH:
                deleted += self._delete_batch(batch)
                batch = []
        if batch:
            deleted += self._delete_batch(batch)
        return deleted

    def _delete_batch(self, batch: list[DeleteObject]) -> int:
        # remove_objects is lazy: the requests are only sent while its errors are iterated.
        errors = list(self._client.remove_objects(self.bucket, batch))
        if errors:
            raise StorageError(f"S3 refused to delete {len(errors)} of {len(batch)} objects.")
        return len(batch)

    # -- URLs ----------------------------------------------------------------------------------

    def signed_url(self, key: str, *, expires: timedelta, filename: str | None = None) -> str:
        """A presigned GET URL; S3 accepts ``expires`` from 1 second to 7 days.

        The object is always served as an attachment: uploaded content rendered inline by a
        browser could be HTML or SVG with scripts.
        """
        validate_key(key)
        disposition = content_disposition_header(True, filename or "download")
        return self._client.presigned_get_object(
            self.bucket,
            key,
            expires=expires,
            response_headers={"response-content-disposition": disposition},
        )

    def presigned_put_url(self, key: str, *, expires: timedelta) -> str | None:
        """A presigned PUT URL for direct-to-storage uploads (1 second to 7 days)."""
        validate_key(key)
        return self._client.presigned_put_object(self.bucket, key, expires=expires)


def _body(view: memoryview) -> bytes:
    """Hand a slice of the part buffer to minio without copying it.

    minio annotates bodies as ``bytes`` but only needs ``len()``, hashing and a buffer for
    urllib3, all of which a memoryview provides; copying would double the memory of a part.
    """
    return cast(bytes, view)


def _check_length(actual: int, declared: int | None) -> None:
    if declared is not None and actual != declared:
        raise ValueError("The stream does not have its declared length.")


def _without_key(exc: S3Error) -> StorageError:
    """A replacement for a minio error, whose message and resource would carry the key.

    Raise it ``from None`` so the original does not reach logs or error pages through the chain.
    """
    return StorageError(f"S3 operation failed: {exc.code}")
