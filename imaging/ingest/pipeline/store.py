"""The store step: a file's bytes under their instance key, written by a few background threads
while the next files are parsed (or moved, when a single-file upload needs no change)."""

from __future__ import annotations

import io
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from imaging.cases import CaseRow
from imaging.ingest.dicom import DicomHeader
from imaging.ingest.unpack import MiB
from imaging.models import Upload
from storage.tenant import TenantStorage

logger = logging.getLogger(__name__)


# Zip entries and uploads up to this size are read into memory (and stored by background
# threads); larger ones are streamed through a scratch file. A DICOM slice is 0.1-2 MB.
IN_MEMORY_ENTRY_BYTES = 16 * MiB
SAVER_THREADS = 4
SAVER_MAX_BYTES = 64 * MiB
PREAMBLE_ZEROS = b"\x00" * 128


@dataclass
class PendingFile:
    header: DicomHeader
    storage_key: str
    size: int
    path: str
    upload: Upload
    # > 0: the bytes are not stored anew but kept where they lie in the upload under
    # ``storage_key`` (its batch), from here on (imaging.instance_files).
    storage_offset: int = 0
    saved: Future[None] | None = None  # set while a background thread stores the bytes
    # The upload's key the bytes were moved from (a single-file upload stored as it is).
    moved_from: str | None = None


class BackgroundSaver:
    """Stores in-memory files on a few threads, with a cap on the bytes waiting to be written.

    Durable writes (fsync, or an HTTP PUT to object storage) wait on I/O and release the GIL,
    so storing the previous files overlaps parsing the next ones; and concurrent fsyncs share
    the filesystem's journal commits, so four in flight cost about what one does. The cap keeps
    memory bounded however many files come: ``submit`` blocks while :data:`SAVER_MAX_BYTES`
    are in flight.
    """

    def __init__(self, storage: TenantStorage) -> None:
        self.storage = storage
        self.pool = ThreadPoolExecutor(max_workers=SAVER_THREADS, thread_name_prefix="ingest-save")
        self.budget = threading.BoundedSemaphore(SAVER_MAX_BYTES // MiB)

    def __enter__(self) -> BackgroundSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def submit(self, key: str, data: bytes) -> Future[None]:
        units = max(1, min(len(data) // MiB + 1, SAVER_MAX_BYTES // MiB))
        for _ in range(units):
            self.budget.acquire()

        def save() -> None:
            try:
                self.storage.save(key, io.BytesIO(data), len(data))
            finally:
                for _ in range(units):
                    self.budget.release()

        return self.pool.submit(save)

    def submit_move(self, src_key: str, dst_key: str) -> Future[None]:
        """Move an upload's bytes to their instance key on a thread (its fsync waits on I/O)."""
        return self.pool.submit(self.storage.move, src_key, dst_key)


def moved_key(case: CaseRow, upload: Upload) -> str:
    """The instance key of a single-file upload whose bytes are moved, not copied: fixed by the
    upload, so that a run claimed again after a crash finds bytes an earlier run moved."""
    return f"dicom/{case.public_id}/{upload.public_id.hex}"
