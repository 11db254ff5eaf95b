"""Receiving tus uploads into tenant storage: create, append, terminate, expire.

How bytes are kept while an upload is incomplete. Storage backends take multipart uploads whose
parts are at least 5 MiB except the last (S3's rule), but tus chunks may have any size and a
connection may drop anywhere. So every full :data:`PART_SIZE` of bytes goes to the upload's
multipart upload as one part, and the remainder (the *tail*, always shorter than a part) is kept
as a small staged object. Each append reads the tail back into a fixed buffer, fills the buffer
from the request and flushes it whenever it is full: memory per request is two parts' buffers
(one being filled while the other is written, see :class:`_PartWriter`), whatever the chunk
size. Invariant, committed in one row update: ``offset == PART_SIZE * len(parts) +
size(tail_key)``.

Concurrency. No database transaction, row lock or case lock is open while a request body is
read from the network (a slow patient would hold it for minutes). A request first takes the
upload's lease (:class:`_Lease`, a cache key: a second request *for the same upload* gets 423
and resumes from the offset HEAD reports), streams the body to storage, and then commits with
a compare-and-set on the offset it started from. Different files of one case share nothing but
the case row, locked for a moment when an upload is created (quota), never while receiving.

Nothing is visible under ``storage_key`` until the last byte arrives and the multipart upload is
completed. A chunk that is refused (checksum mismatch) may leave parts in storage beyond those
the row lists; the next chunk overwrites them (same part numbers), and completing or aborting the
multipart upload discards any the row does not list.
"""

# long module: create, append, terminate and expire all keep the one invariant above on the same
# row and parts, and reading them side by side is how that invariant is checked.

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime, timedelta
from typing import BinaryIO, cast

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from imaging.models import Instance, Report, Upload
from intake.models import Case
from intake.tus import messages
from intake.tus.protocol import (
    HTTP_CHECKSUM_MISMATCH,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_LOCKED,
    Body,
    Checksum,
    TusError,
    UploadDescription,
    human_size,
)
from storage.base import CHUNK_SIZE, MIN_PART_SIZE, MiB, StorageUnavailable, read_exactly
from storage.tenant import TenantStorage, tenant_storage
from tenants.prepared import PreparedSelect, PreparedUpdate

logger = logging.getLogger(__name__)

GiB = 1024 * MiB

# The multipart part size, and the buffer each append holds. The wizard sends 8 MiB chunks
# (intake.views.UPLOAD_CHUNK_SIZE): with parts of the same size each chunk fills exactly one part
# and leaves no tail to stage, and a part's flush to disk (fsync) comes once per 8 MiB rather than
# once per 5 MiB (S3's minimum, which any size above satisfies).
PART_SIZE = 8 * MiB
assert PART_SIZE >= MIN_PART_SIZE
# Request bodies are read in pieces of this size (the socket read size, not a memory bound).
READ_SIZE = CHUNK_SIZE
# Largest file (tus's Tus-Max-Size): a whole CD as one zip fits; 4 GiB / 5 MiB parts < 10,000 parts.
MAX_UPLOAD_SIZE = 4 * GiB
# Largest total of the files of one case (counting uploads in progress at their full size),
# and of all the cases of one person (a new draft is not a new allowance; intake.drafts).
CASE_QUOTA = 20 * GiB
PATIENT_QUOTA = 30 * GiB
# A CD holds a few thousand files; a case may hold several CDs.
MAX_UPLOADS_PER_CASE = 20_000
# An incomplete upload expires this long after its last chunk (tus expiration extension).
UPLOAD_LIFETIME = timedelta(hours=24)

_COUNTED_STATUSES = ~Q(status__in=(Upload.Status.FAILED, Upload.Status.EXPIRED))

# The rows upload_create locks (only their ids are read: the lock is the point), and an upload's
# row as committed now, read again by every PATCH under its lease: compiled once (tenants.prepared).
_OWNER_LOCK = PreparedSelect(lambda pk: User.objects.select_for_update().filter(pk=pk).only("pk")[:1], -1)
_CASE_LOCK = PreparedSelect(lambda pk: Case.objects.select_for_update().filter(pk=pk).only("pk")[:1], -1)
_UPLOAD_BY_ID = PreparedSelect(lambda pk: Upload.objects.filter(pk=pk)[:1], -1)
# Every chunk's commit: a compare-and-set on the offset (_commit).
_UPLOAD_COMMIT = PreparedUpdate(
    lambda pk, offset: Upload.objects.filter(pk=pk, offset=offset, status=Upload.Status.RECEIVING),
    -1,
    -2,
)


def upload_storage_key(*, case: Case, upload_public_id: uuid.UUID) -> str:
    """Opaque final key: ids only, never a file name."""
    return f"uploads/{case.public_id}/{upload_public_id}"


def upload_staging_prefix(*, upload: Upload) -> str:
    """The folder of an upload's staged tails (deleted whole when the upload ends)."""
    return f"tus-staging/{upload.public_id}"


class _MemoryReader:
    """A read-only stream over a slice of the part buffer that never copies it.

    ``read`` returns views into the buffer, not bytes: storage only writes or hashes what it
    reads and is done with it before it returns, and the buffer is refilled only after that.
    """

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._position = 0

    def read(self, size: int = -1) -> memoryview:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._position + size)
        data = self._view[self._position : end]
        self._position = end
        return data

    def readinto(self, target: memoryview | bytearray) -> int:
        count = min(len(target), len(self._view) - self._position)
        target[:count] = self._view[self._position : self._position + count]
        self._position += count
        return count


def _reader(view: memoryview) -> BinaryIO:
    # Storage takes any object with read(); BinaryIO is only how its signatures spell that.
    return cast(BinaryIO, _MemoryReader(view))


# While a request receives a chunk it holds its upload's *lease*: a short-lived cache key taken
# with an atomic add, renewed while bytes keep arriving. It lapses only if the request's thread
# died without releasing it; the next request of that upload may then take over.
LEASE_SECONDS = 60
LEASE_RENEW_SECONDS = 10


def _lease_key(upload: Upload) -> str:
    return f"tus-lease:{upload.public_id}"


class _Lease:
    """The right to write the next bytes of one upload (see LEASE_SECONDS).

    With the cache (Redis) away the upload goes on without a lease rather than failing: the
    lease only turns a second request for the same upload away early; the commit's
    compare-and-set on the offset still keeps one request's bytes, whatever happens.
    """

    def __init__(self, upload: Upload) -> None:
        self.key = _lease_key(upload)
        self.token = uuid.uuid4().hex
        self.renewed = 0.0
        self.held = False

    def acquire(self) -> None:
        try:
            taken = cache.add(self.key, self.token, LEASE_SECONDS)
        except Exception as exc:
            logger.warning("tus lease unavailable, going on without: %s", type(exc).__name__)
            return
        if not taken:
            raise TusError(HTTP_LOCKED, messages.UPLOAD_BUSY)
        self.held = True
        self.renewed = time.monotonic()

    def renew_if_due(self) -> None:
        now = time.monotonic()
        if self.held and now - self.renewed >= LEASE_RENEW_SECONDS:
            self.renewed = now
            with suppress(Exception):
                if cache.get(self.key) == self.token:
                    cache.touch(self.key, LEASE_SECONDS)

    def release(self) -> None:
        if self.held:
            with suppress(Exception):
                if cache.get(self.key) == self.token:
                    cache.delete(self.key)


@contextmanager
def _upload_lease(upload: Upload) -> Iterator[_Lease]:
    """Hold ``upload``'s lease for the block; 423 at once if another request holds it."""
    lease = _Lease(upload)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()


def upload_lease_held(*, upload: Upload) -> bool:
    """Whether some request is receiving a chunk of ``upload`` right now (with the cache away:
    taken to be so, which only postpones expiring it)."""
    try:
        return cache.get(_lease_key(upload)) is not None
    except Exception:
        return True


def upload_create(*, case: Case, owner: User, length: int, description: UploadDescription) -> Upload:
    """Register a new upload of ``length`` bytes for ``case`` and open its multipart upload.

    Precondition: ``owner`` owns ``case`` and may add files to it (``access_case_for_upload``).
    The case row is locked while the quota is checked, so two uploads started at once cannot
    together exceed it (they wait for each other a moment; neither is refused). No storage
    call runs under that lock: the multipart upload is opened before it (and aborted if the
    upload is refused), so the row is written once, already pointing at it. A 0-byte file is
    complete at once.
    """
    if length > MAX_UPLOAD_SIZE:
        raise TusError(413, gettext(messages.FILE_TOO_LARGE).format(limit=human_size(MAX_UPLOAD_SIZE)))
    storage = tenant_storage()
    public_id = uuid.uuid4()
    key = upload_storage_key(case=case, upload_public_id=public_id)
    multipart_id = ""
    if length:
        try:
            multipart_id = storage.multipart_start(key)
        except StorageUnavailable as exc:
            logger.warning("tus upload not created: %s", type(exc.__cause__ or exc).__name__)
            raise TusError(HTTP_INSUFFICIENT_STORAGE, messages.STORAGE_UNAVAILABLE) from None
    try:
        upload = _upload_register(
            case=case,
            owner=owner,
            length=length,
            description=description,
            public_id=public_id,
            key=key,
            multipart_id=multipart_id,
        )
    except BaseException:
        if multipart_id:
            with suppress(Exception):  # an orphan is only staging space; the refusal matters
                storage.multipart_abort(key, multipart_id)
        raise
    if length == 0:
        # The client learns the upload's address only from our answer: nothing else can
        # reach this row yet.
        try:
            try:
                storage.save(key, _reader(memoryview(b"")), 0)
                with transaction.atomic():
                    _upload_received(upload=upload, storage=storage)
            except StorageUnavailable as exc:
                logger.warning("tus upload not created: %s", type(exc.__cause__ or exc).__name__)
                raise TusError(HTTP_INSUFFICIENT_STORAGE, messages.STORAGE_UNAVAILABLE) from None
        except BaseException:
            Upload.objects.filter(pk=upload.pk).delete()
            raise
    return upload


def _upload_register(
    *,
    case: Case,
    owner: User,
    length: int,
    description: UploadDescription,
    public_id: uuid.UUID,
    key: str,
    multipart_id: str,
) -> Upload:
    """Check the quotas and insert the upload's row, in one transaction (see upload_create)."""
    with transaction.atomic():
        # The owner's row, then the case's: uploads started at once to any of their cases wait
        # for each other a moment, so together they cannot pass either quota. Only the ids
        # are fetched: the lock is the point.
        _OWNER_LOCK.first(owner.pk)
        _CASE_LOCK.first(case.pk)
        # Both quotas in one pass over the owner's uploads (the case is the owner's).
        usage = Upload.objects.filter(_COUNTED_STATUSES, case__owner=owner).aggregate(
            owner_used=Sum("length", default=0),
            used=Sum("length", default=0, filter=Q(case=case)),
            files=Count("id", filter=Q(case=case)),
        )
        if usage["owner_used"] + length > PATIENT_QUOTA:
            raise TusError(
                413,
                gettext(messages.PATIENT_QUOTA_EXCEEDED).format(
                    used=human_size(usage["owner_used"]), limit=human_size(PATIENT_QUOTA)
                ),
            )
        if usage["files"] >= MAX_UPLOADS_PER_CASE:
            raise TusError(413, gettext(messages.TOO_MANY_FILES).format(limit=f"{MAX_UPLOADS_PER_CASE:,}"))
        if usage["used"] + length > CASE_QUOTA:
            raise TusError(
                413,
                gettext(messages.CASE_QUOTA_EXCEEDED).format(
                    used=human_size(usage["used"]), limit=human_size(CASE_QUOTA)
                ),
            )
        metadata = {"filename": description.filename}
        if description.report_kind:
            metadata["reportKind"] = description.report_kind
        if description.batch_files:
            metadata["batchFiles"] = str(description.batch_files)
        return Upload.objects.create(
            public_id=public_id,
            case=case,
            owner=owner,
            kind=description.kind,
            relative_path=description.relative_path,
            length=length,
            storage_key=key,
            multipart_id=multipart_id,
            metadata=metadata,
            sha256=description.sha256,
            expires_at=timezone.now() + UPLOAD_LIFETIME,
        )


def _lock_for_writing(upload: Upload) -> Upload:
    """Re-fetch ``upload`` with its row (and only its row, not its case's) locked."""
    try:
        return Upload.objects.select_for_update(of=("self",)).select_related("case").get(pk=upload.pk)
    except Upload.DoesNotExist:
        raise TusError(404, messages.UPLOAD_NOT_FOUND) from None


def upload_check_receiving(*, upload: Upload, now: datetime | None = None) -> None:
    """Refuse to go on with an upload that is complete, failed or expired."""
    if upload.status == Upload.Status.RECEIVING:
        if upload.expires_at is not None and upload.expires_at <= (now or timezone.now()):
            raise TusError(410, messages.UPLOAD_EXPIRED)
        return
    if upload.status == Upload.Status.EXPIRED:
        raise TusError(410, messages.UPLOAD_EXPIRED)
    if upload.status == Upload.Status.FAILED:
        raise TusError(410, upload.error_message or messages.UPLOAD_FAILED)
    raise TusError(409, messages.UPLOAD_COMPLETE, {"Upload-Offset": str(upload.offset)})


def upload_append(
    *, upload: Upload, offset: int, body: Body, checksum: Checksum | None, just_created: bool = False
) -> Upload:
    """Append the request ``body`` at ``offset``; return the upload as committed.

    Refuses (nothing kept) a wrong offset (409), a body past the declared length (413), a
    second request for the same upload while one is receiving (423), a chunk whose checksum
    does not match (460) and a chunk our storage could not take (507: disk full, object store
    down; the offset stays where it was). If the connection drops midway and no checksum was given, the bytes
    received so far are kept (tus: store as much as possible), so the client resends only what
    never arrived. When the last byte arrives the file is assembled, checked against the
    whole-file sha256 if one was given (a mismatch marks the upload FAILED and deletes its
    bytes), marked RECEIVED and handed to ingest.

    No transaction, row lock or case lock is held while the body is read from the network:
    the request holds only the upload's lease, and commits the new offset at the end with a
    compare-and-set on the offset it started from. Uploads of different files of a case never
    wait for each other.

    ``just_created``: ``upload`` is the row this request created a moment ago
    (creation-with-upload), whose address no client knows yet: no other request can be writing
    it, so it is taken as it is, with no lease and no second read.
    """
    if body.length == 0:
        # An empty PATCH writes nothing, so it takes no lease (and so never turns away the
        # request that is about to send the bytes): it learns whether one is receiving, or
        # where the upload stands.
        if upload_lease_held(upload=upload):
            raise TusError(HTTP_LOCKED, messages.UPLOAD_BUSY)
        current = _UPLOAD_BY_ID.first(upload.pk)
        if current is None:
            raise TusError(404, messages.UPLOAD_NOT_FOUND)
        upload_check_receiving(upload=current)
        if offset != current.offset:
            raise TusError(409, messages.OFFSET_MISMATCH, {"Upload-Offset": str(current.offset)})
        return current
    storage = tenant_storage()
    with nullcontext(_Lease(upload)) if just_created else _upload_lease(upload) as lease:
        # Read again under the lease: another request may have committed since the caller's read.
        current = upload if just_created else _UPLOAD_BY_ID.first(upload.pk)
        if current is None:
            raise TusError(404, messages.UPLOAD_NOT_FOUND)
        upload_check_receiving(upload=current)
        if offset != current.offset:
            raise TusError(409, messages.OFFSET_MISMATCH, {"Upload-Offset": str(current.offset)})
        assert current.length is not None
        remaining = current.length - current.offset
        if body.length is not None and body.length > remaining:
            raise TusError(413, messages.CHUNK_TOO_LONG)
        try:
            _receive(
                upload=current,
                storage=storage,
                body=body,
                remaining=remaining,
                checksum=checksum,
                lease=lease,
            )
        except StorageUnavailable as exc:
            # Ours, not the patient's: nothing of this chunk was committed (the offset commit
            # comes after storage), the bytes accepted before are intact, the client resumes.
            logger.warning("tus chunk not stored: %s", type(exc.__cause__ or exc).__name__)
            raise TusError(
                HTTP_INSUFFICIENT_STORAGE,
                messages.STORAGE_UNAVAILABLE,
                {"Upload-Offset": str(current.offset)},
            ) from None
    return current


def _commit(*, upload: Upload, expected_offset: int, **fields: object) -> None:
    """Write ``fields`` to ``upload``'s row if it is still receiving at ``expected_offset``
    (compare-and-set), and onto ``upload``; else refuse with the offset that row has now."""
    now = timezone.now()
    updated = _UPLOAD_COMMIT.run({**fields, "updated": now}, upload.pk, expected_offset)
    if not updated:
        # Only when our lease lapsed (the request stalled for LEASE_SECONDS) and another
        # request of the same upload went on: what it committed stands.
        row = Upload.objects.filter(pk=upload.pk).values_list("offset", flat=True).first()
        raise TusError(409, messages.OFFSET_MISMATCH, {"Upload-Offset": str(row or 0)})
    for name, value in fields.items():
        setattr(upload, name, value)
    upload.updated = now


class _BufferPool:
    """Part buffers kept between requests, a few at most per process.

    ``bytearray(PART_SIZE)`` zeroes 8 MiB and faults in every page of it; with two per request
    that was a tenth of the web process's CPU in a folder drop (many requests of a few MiB). A
    buffer taken from here is reused as it is: only the bytes a request writes are read back.
    """

    def __init__(self, keep: int) -> None:
        self._free: list[bytearray] = []
        self._keep = keep
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            if self._free:
                return self._free.pop()
        return bytearray(PART_SIZE)

    def give_back(self, buffer: bytearray) -> None:
        with self._lock:
            if len(self._free) < self._keep:
                self._free.append(buffer)


# Enough for two requests at once to take theirs without allocating; at most 32 MiB kept.
_buffers = _BufferPool(keep=4)


# The threads that put full parts, shared by the requests of this process (each has at most
# one put running, so a gthread worker's eight request threads never wait for a free one);
# starting a thread for every request cost more than some puts. Made on first use, in the
# process that uses it (never inherited half-made through a fork).
PART_PUT_THREADS = 16
_part_puts: tuple[int, ThreadPoolExecutor] | None = None
_part_puts_lock = threading.Lock()


def _part_put_executor() -> ThreadPoolExecutor:
    global _part_puts
    with _part_puts_lock:
        if _part_puts is None or _part_puts[0] != os.getpid():
            _part_puts = (os.getpid(), ThreadPoolExecutor(PART_PUT_THREADS, thread_name_prefix="tus-part"))
        return _part_puts[1]


class _PartWriter:
    """Puts full parts to storage on a background thread while the request thread goes on
    reading the body into a second buffer, so disk or network writes (and their fsync) overlap
    with receiving. Memory: two part buffers per request.

    Use it as a context manager: leaving waits for a put still running, whatever happened.
    """

    def __init__(self, *, upload: Upload, storage: TenantStorage, first_part: int) -> None:
        self._upload = upload
        self._storage = storage
        # The second buffer is taken only when the first is full: a chunk of one part or less
        # (a folder drop's batches, the wizard's 8 MiB chunks) needs one.
        self._buffers = [_buffers.take()]
        self._current = 0
        self._pending: Future[list[int | str]] | None = None
        self.next_part = first_part
        self.parts: list[list[int | str]] = []

    def __enter__(self) -> _PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        # The buffers go back to the pool only once no put reads them any more.
        if self._pending is not None:
            wait([self._pending])
        for buffer in self._buffers:
            _buffers.give_back(buffer)

    def load(self, stream: BinaryIO) -> int:
        """Fill the current buffer from ``stream`` (a staged tail); return how many bytes."""
        return read_exactly(stream, self._buffers[self._current])

    @property
    def view(self) -> memoryview:
        """The buffer being filled now."""
        return memoryview(self._buffers[self._current])

    def flush_full(self) -> None:
        """Start putting the full current buffer as the next part; switch to the other buffer
        (after its own put, if one is running, has finished)."""
        self._wait()
        number, view = self.next_part, self.view
        self._pending = _part_put_executor().submit(self._put, number, view, PART_SIZE)
        self.next_part += 1
        if len(self._buffers) == 1:
            self._buffers.append(_buffers.take())
        self._current ^= 1

    def finish(self) -> list[list[int | str]]:
        """Wait for the last put; return every part put, as ``[number, etag]``."""
        self._wait()
        return self.parts

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.parts.append(pending.result())

    def _put(self, number: int, view: memoryview, length: int) -> list[int | str]:
        etag = self._storage.multipart_put(
            self._upload.storage_key, self._upload.multipart_id, number, _reader(view[:length]), length
        )
        return [number, etag]


def _receive(
    *,
    upload: Upload,
    storage: TenantStorage,
    body: Body,
    remaining: int,
    checksum: Checksum | None,
    lease: _Lease,
) -> None:
    """Stream ``body`` into parts and a new tail; commit ``upload``'s new state to match."""
    with _PartWriter(upload=upload, storage=storage, first_part=len(upload.parts) + 1) as writer:
        _receive_into(
            upload=upload,
            storage=storage,
            body=body,
            remaining=remaining,
            checksum=checksum,
            writer=writer,
            lease=lease,
        )


def _receive_into(
    *,
    upload: Upload,
    storage: TenantStorage,
    body: Body,
    remaining: int,
    checksum: Checksum | None,
    writer: _PartWriter,
    lease: _Lease,
) -> None:
    view = writer.view
    filled = 0
    if upload.tail_key:
        with storage.open(upload.tail_key) as tail:
            filled = writer.load(tail)
    hasher = checksum.hasher() if checksum else None
    # The whole file's sha256, when the client gave one and the file comes in this one request:
    # hashed as it arrives, rather than read back from storage once it is complete.
    whole = hashlib.sha256() if upload.sha256 and upload.offset == 0 else None
    limit = remaining if body.length is None else body.length
    # A stream that can fill our buffer itself (gunicorn's socket, intake.tus.body) is read
    # into it with no copy of ours; any other is read in pieces copied into it.
    readinto = getattr(body.stream, "readinto", None)
    received = 0
    dropped = False
    while received < limit:
        want = min(READ_SIZE, PART_SIZE - filled, limit - received)
        try:
            if readinto is not None:
                count = readinto(view[filled : filled + want])
            else:
                data = body.stream.read(want)
                count = len(data)
                view[filled : filled + count] = data
        except OSError:  # the client went away mid-chunk (Django raises UnreadablePostError)
            dropped = True
            break
        if not count:
            break
        if hasher is not None:
            hasher.update(view[filled : filled + count])
        if whole is not None:
            whole.update(view[filled : filled + count])
        filled += count
        received += count
        if filled == PART_SIZE:
            writer.flush_full()
            view = writer.view
            filled = 0
        lease.renew_if_due()
    new_parts = writer.finish()
    part_number = writer.next_part
    if body.length is None and received == remaining and body.stream.read(1):
        raise TusError(413, messages.CHUNK_TOO_LONG)
    if body.length is not None and received < body.length:
        dropped = True
    if hasher is not None and checksum is not None:
        # Only a whole chunk can be verified: anything else is discarded (see module docstring).
        if dropped:
            raise TusError(400, messages.CHUNK_INCOMPLETE)
        if hasher.digest() != checksum.digest:
            raise TusError(HTTP_CHECKSUM_MISMATCH, messages.CHECKSUM_MISMATCH)
    if received == 0:
        return
    if dropped:
        logger.info(
            "tus chunk cut short; keeping the bytes received", extra={"upload": str(upload.public_id)}
        )
    started_at = upload.offset
    old_tail = upload.tail_key
    parts = [*upload.parts, *new_parts]
    offset = started_at + received
    assert upload.length is not None
    if offset == upload.length:
        if filled:
            etag = storage.multipart_put(
                upload.storage_key, upload.multipart_id, part_number, _reader(view[:filled]), filled
            )
            parts.append([part_number, etag])
        _upload_assemble(
            upload=upload,
            storage=storage,
            expected_offset=started_at,
            parts=parts,
            sha256=whole.hexdigest() if whole is not None else None,
        )
        return
    tail_key = ""
    if filled:
        # A new key each time: the committed tail stays intact until the row points elsewhere.
        tail_key = f"{upload_staging_prefix(upload=upload)}/{uuid.uuid4().hex}"
        storage.save(tail_key, _reader(view[:filled]), filled)
    try:
        _commit(
            upload=upload,
            expected_offset=started_at,
            parts=parts,
            offset=offset,
            tail_key=tail_key,
            expires_at=timezone.now() + UPLOAD_LIFETIME,
        )
    except TusError:
        if tail_key:
            storage.delete(tail_key)
        raise
    if old_tail:
        storage.delete(old_tail)


def _upload_assemble(
    *,
    upload: Upload,
    storage: TenantStorage,
    expected_offset: int,
    parts: list[list[int | str]],
    sha256: str | None = None,
) -> None:
    """The last byte arrived: complete the multipart upload, verify the whole-file sha256, then
    commit RECEIVED (and queue ingest) or FAILED. Storage is done before the transaction.

    ``sha256``: the hex digest of every byte of the file, hashed while they were received (the
    file came in one request); without it the file is read back from storage to be hashed.
    """
    storage.multipart_complete(upload.storage_key, upload.multipart_id, [(n, e) for n, e in parts])  # type: ignore[misc]
    failed = False
    if upload.sha256:
        if sha256 is None:
            digest = hashlib.sha256()
            with storage.open(upload.storage_key) as reader:
                for piece in reader.chunks():
                    digest.update(piece)
            sha256 = digest.hexdigest()
        failed = sha256 != upload.sha256
        if failed:
            storage.delete(upload.storage_key)
    # One UPDATE, committed on its own: the staging clean-up and the ingest are queued after it
    # (on_commit runs them at once outside a transaction, at the end of a caller's).
    _commit(
        upload=upload,
        expected_offset=expected_offset,
        parts=parts,
        offset=upload.length,
        multipart_id="",
        tail_key="",
        expires_at=None,
        status=Upload.Status.FAILED if failed else Upload.Status.RECEIVED,
        error_message=messages.WHOLE_FILE_MISMATCH if failed else "",
    )
    _staging_delete_on_commit(upload=upload, storage=storage)
    if not failed:
        _ingest_enqueue(upload=upload)


def _ingest_enqueue(*, upload: Upload) -> None:
    # Imported here: importing the pipeline at start-up would load all of ingest for every request.
    from imaging.ingest.pipeline import upload_ingest_enqueue

    upload_ingest_enqueue(upload=upload)


def _upload_received(*, upload: Upload, storage: TenantStorage) -> None:
    """A 0-byte upload is complete at creation: mark it RECEIVED and queue its ingest (after
    commit). Precondition: inside a transaction."""
    upload.status = Upload.Status.RECEIVED
    upload.tail_key = ""
    upload.expires_at = None
    upload.save(update_fields=["status", "tail_key", "expires_at", "updated"])
    _staging_delete_on_commit(upload=upload, storage=storage)
    _ingest_enqueue(upload=upload)


def _staging_delete_on_commit(*, upload: Upload, storage: TenantStorage) -> None:
    prefix = upload_staging_prefix(upload=upload)
    transaction.on_commit(lambda: storage.delete_prefix(prefix))


def _bytes_discard(*, upload: Upload, storage: TenantStorage) -> None:
    """Delete every byte an unfinished upload holds: parts, staged tails, any final object."""
    if upload.multipart_id:
        storage.multipart_abort(upload.storage_key, upload.multipart_id)
    storage.delete_prefix(upload_staging_prefix(upload=upload))
    storage.delete(upload.storage_key)


def upload_terminate(*, upload: Upload) -> None:
    """Cancel an upload the patient no longer wants (tus termination): its bytes and its row go.

    Only an upload that is not complete (or that failed or expired) and left nothing in the case
    can be cancelled here. A received file is refused (409) even in a draft: ingest may already
    have made images or a report of it, and no service yet removes those (imaging.ingest has
    none); deleting the upload alone would leave them in the case, detached from any file.
    """
    storage = tenant_storage()
    with _upload_lease(upload), transaction.atomic():
        locked = _lock_for_writing(upload)
        if locked.status not in (Upload.Status.RECEIVING, Upload.Status.FAILED, Upload.Status.EXPIRED):
            raise TusError(409, messages.UPLOAD_NOT_TERMINABLE)
        # A FAILED upload may have failed during ingest, after keeping some images.
        if Instance.objects.filter(upload=locked).exists() or Report.objects.filter(upload=locked).exists():
            raise TusError(409, messages.UPLOAD_NOT_TERMINABLE)
        _bytes_discard(upload=locked, storage=storage)
        locked.delete()


def upload_creation_refuse(*, upload: Upload) -> None:
    """Undo the creation of ``upload`` whose first chunk (creation-with-upload) was refused.

    The whole creation request is refused then, as the checksum extension asks of any request
    whose data is refused, so the client never learns this upload's address: keeping it would
    only hold its size against the case's quota until it expired.
    """
    upload_terminate(upload=upload)


def upload_expire(*, upload: Upload) -> None:
    """Expire one unfinished upload. Precondition: its row is locked by the caller's transaction."""
    _bytes_discard(upload=upload, storage=tenant_storage())
    upload.status = Upload.Status.EXPIRED
    upload.error_message = messages.UPLOAD_EXPIRED
    upload.multipart_id = ""
    upload.tail_key = ""
    upload.parts = []
    upload.save(update_fields=["status", "error_message", "multipart_id", "tail_key", "parts", "updated"])


def uploads_expired_cleanup(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire every upload of the current schema not finished in time; return how many.

    Each upload is claimed with SKIP LOCKED, so an upload receiving a chunk right now is left
    alone (that chunk pushes its expiry back anyway), and two cleaners never expire one twice.
    """
    moment = now or timezone.now()
    expired = 0
    while True:
        candidates = list(
            Upload.objects.filter(status=Upload.Status.RECEIVING, expires_at__lte=moment)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        claimed_any = False
        for upload_id in candidates:
            with transaction.atomic():
                upload = (
                    Upload.objects.select_for_update(skip_locked=True)
                    .filter(id=upload_id, status=Upload.Status.RECEIVING, expires_at__lte=moment)
                    .first()
                )
                if upload is None or upload_lease_held(upload=upload):
                    continue  # a chunk is arriving right now: it pushes the expiry back
                upload_expire(upload=upload)
                expired += 1
                claimed_any = True
        if len(candidates) < batch or not claimed_any:
            return expired
