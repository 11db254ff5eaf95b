"""The ingest services: from an upload's bytes to studies, series, instances and reports.

Entry points:

- :func:`upload_ingest_enqueue` (the tus server calls it once an upload's bytes are complete)
- :func:`upload_ingest_run` (the Celery task calls it; so do the demo seed and the benchmark)

Uploads are claimed with a conditional UPDATE (RECEIVED → INGESTING), so running the task twice
does nothing the second time; an upload stuck in INGESTING for :data:`INGEST_STALE_AFTER` (its
worker died) may be claimed again, and re-ingesting it is harmless: files already stored from
the same upload are recognised and not reported as duplicates.

Folder drops: the browser sends a CD's folder as one upload per file, and each upload queues a
task. The first task to run claims a batch of the case's waiting imaging uploads at once
(:func:`imaging_uploads_claim`, ``FOR UPDATE SKIP LOCKED``) and ingests them together the way a
zip is ingested: instances inserted in bulk, one count recomputation per batch, problems in one
insert, files stored by background threads. The tasks of the other uploads then find nothing
to claim and return at once. Each upload still ends DONE or FAILED on its own, with its own
problems; a bad file never stops the batch.

Concurrency: two workers may add instances to the same series at once. Studies and series are
found with ``get_or_create`` on their unique constraints; instances are inserted with ``ON
CONFLICT DO NOTHING`` and checked afterwards; and counts are recomputed by one UPDATE with a
subquery while the studies' rows are locked, never by read-modify-write.

Once an imaging upload is DONE with nothing set aside but benign files, its raw bytes are
deleted: every image in it is stored under its own key. A FAILED upload (or one with a file we
could not take) keeps its bytes so staff can look at what the patient sent. A single-file
upload that is a valid DICOM needing no change is not copied at all: its bytes are moved to
their instance key (fixed by the upload, so a retried run finds them), and moved back if the
instance is not written.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import posixpath
import tempfile
import threading
import traceback
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

from django.contrib.postgres.aggregates import StringAgg
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from imaging.cases import CaseRow
from imaging.ingest import messages
from imaging.ingest.consistency import case_patient_consistency_check, patient_names_differ
from imaging.ingest.dicom import (
    HEAD_BYTES,
    VIEWER_EXTENSIONS,
    DicomHeader,
    FileKind,
    FileRejected,
    PreambleZeroingReader,
    file_sniff,
    header_read,
)
from imaging.ingest.preview import series_preview_ensure, series_preview_schedule
from imaging.ingest.reports import case_reports_match, report_ingest, seekable_upload
from imaging.ingest.unpack import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    ArchiveRefused,
    Entry,
    EntryRefused,
    MiB,
    archive_open,
    entries_in_order,
    entry_extract,
    entry_read,
)
from imaging.models import FileProblem, Instance, Series, Study, Upload
from storage.base import ObjectNotFound
from storage.tenant import TenantStorage, tenant_storage

logger = logging.getLogger(__name__)

# Instances written to the database in one transaction.
BATCH_SIZE = 250
# Zip entries and uploads up to this size are read into memory (and stored by background
# threads); larger ones are streamed through a scratch file. A DICOM slice is 0.1-2 MB.
IN_MEMORY_ENTRY_BYTES = 16 * MiB
SAVER_THREADS = 4
SAVER_MAX_BYTES = 64 * MiB
PREAMBLE_ZEROS = b"\x00" * 128
INGEST_STALE_AFTER = timedelta(minutes=30)
# A folder drop's uploads claimed by one task. Large enough that the per-upload cost (claim,
# study lock, counts, previews, consistency) is paid once per batch; small enough that two
# workers share a 1,000-file folder and a batch finishes in seconds.
CLAIM_BATCH_UPLOADS = 200
# Uploads larger than this (a zip of a whole CD) are claimed alone, so that a batch of small
# files never waits behind one, and a large one never waits behind a batch.
CLAIM_BATCH_MAX_BYTES = IN_MEMORY_ENTRY_BYTES

# Allocations between two collections of the youngest generation while a batch is ingested
# (Python's default is 700). Parsing a header allocates thousands of objects, so the default
# collects every few files and walks everything alive each time (a batch's headers, rows,
# Django's caches): about a tenth of the CPU. Cycles are still collected, just less often.
GC_THRESHOLD_WHILE_INGESTING = 50_000

# Problems that do not make an upload "failed" when nothing else was kept (a DICOMDIR alone, a
# viewer's help file, an image sent twice), nor make us keep its raw bytes for staff to look at.
_BENIGN = {FileProblem.Code.SKIPPED_PROGRAM, FileProblem.Code.DUPLICATE, FileProblem.Code.PREAMBLE_CLEARED}


def upload_ingest_enqueue(*, upload: Upload) -> None:
    """Queue the ingest of ``upload`` once the current transaction commits.

    Precondition: ``upload.status`` is RECEIVED (its bytes are complete in storage). Safe to
    call twice: the task claims the upload, and only one claim succeeds.
    """
    from imaging.tasks import upload_ingest

    upload_id = upload.pk
    transaction.on_commit(lambda: upload_ingest.delay(upload_id))


@dataclass
class UploadTally:
    """What became of one upload's files within a run."""

    accepted: int = 0
    serious_problems: int = 0
    # Every file of the upload was read and every instance of it committed (or refused).
    settled: bool = False
    # Its bytes were moved to their instance key: no raw bytes are left to delete.
    moved: bool = False

    @property
    def failed(self) -> bool:
        return self.accepted == 0 and self.serious_problems > 0


@dataclass
class IngestOutcome:
    accepted: int = 0  # instances stored (imaging) or 1 for a report kept
    problems: int = 0
    failed: bool = False  # every upload of the run failed
    series_ids: set[int] = field(default_factory=set)
    new_studies: int = 0
    uploads: dict[int, UploadTally] = field(default_factory=dict)

    @property
    def failed_upload_ids(self) -> set[int]:
        return {upload_id for upload_id, tally in self.uploads.items() if tally.failed}


class _BatchLost(Exception):
    """Writing a batch to the database failed: not a file's fault, so never recorded as one."""


@dataclass
class _Pending:
    header: DicomHeader
    storage_key: str
    size: int
    path: str
    upload: Upload
    saved: Future[None] | None = None  # set while a background thread stores the bytes
    # The upload's key the bytes were moved from (a single-file upload stored as it is).
    moved_from: str | None = None


class _BackgroundSaver:
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

    def __enter__(self) -> _BackgroundSaver:
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


class _ImagingRun:
    """The state of ingesting a batch of imaging uploads (files of a folder, or a zip of a CD).

    ``self.upload`` is the upload being read; what is found in it (instances waiting to be
    written, problems) carries that upload, so a batch of many uploads keeps each file's
    problems and instances on the upload it came from.
    """

    def __init__(
        self, case: CaseRow, storage: TenantStorage, saver: _BackgroundSaver, limits: ArchiveLimits
    ) -> None:
        self.case = case
        self.limits = limits
        self.storage = storage
        self.saver = saver
        self.upload: Upload | None = None
        # The key holding the bytes of the single-file upload being read, while it is read.
        self.move_source: str | None = None
        self.batch: list[_Pending] = []
        self.problems: list[FileProblem] = []
        # Uploads whose every file was read; settled by the next flush that commits.
        self.read: list[int] = []
        self.seen: set[str] = set()
        self.studies: dict[str, Study] = {}
        self.series: dict[tuple[str, str], Series] = {}
        self.outcome = IngestOutcome()
        self.mismatch_seen = False
        self.patient_filled = False
        self.referenced: list[str] = []

    def tally(self, upload: Upload) -> UploadTally:
        return self.outcome.uploads.setdefault(upload.pk, UploadTally())

    # -- problems ------------------------------------------------------------------------------

    def problem(self, path: str, code: str, message: str, *, upload: Upload | None = None) -> None:
        upload = upload or self.upload
        assert upload is not None, "a problem belongs to an upload"
        self.problems.append(
            FileProblem(case=self.case, upload=upload, path=path[:1000], code=code, message=message[:300])
        )
        if code not in _BENIGN:
            self.tally(upload).serious_problems += 1
        if len(self.problems) >= BATCH_SIZE:
            self.problems_save()

    def problems_save(self) -> None:
        if self.problems:
            FileProblem.objects.bulk_create(self.problems)
            self.outcome.problems += len(self.problems)
            self.problems = []

    # -- one upload ------------------------------------------------------------------------------

    def upload_ingest(self, upload: Upload, *, retried: bool = False) -> None:
        """Read every file of ``upload``; its instances join the batch (flushed when full).

        Whatever goes wrong with the upload's bytes is a problem of this upload; only
        :class:`_BatchLost` (the database failed us) propagates.
        """
        self.upload = upload
        self.tally(upload)
        try:
            self._upload_read(upload)
        except _BatchLost:
            raise
        except Exception as exc:
            if not (retried and self._already_stored(upload)):
                _failure_log(exc, [upload.pk])
                self.problem(
                    upload.relative_path, FileProblem.Code.UNREADABLE, messages.UPLOAD_FAILED, upload=upload
                )
        self.read.append(upload.pk)
        if len(self.batch) >= BATCH_SIZE:
            self.flush()

    def _already_stored(self, upload: Upload) -> bool:
        """Whether a retried ``upload`` lost its raw bytes because its earlier run stored every
        file (the crash came between deleting them and recording DONE); if so, count them."""
        if self.storage.exists(upload.storage_key):
            return False
        kept = Instance.objects.filter(upload=upload).count()
        self.tally(upload).accepted += kept
        self.outcome.accepted += kept
        return kept > 0

    def _upload_read(self, upload: Upload) -> None:
        path = str(upload.relative_path or upload.metadata.get("filename") or "")
        size = upload.length
        if size is None:
            size = self.storage.size(upload.storage_key)
        if size <= IN_MEMORY_ENTRY_BYTES:
            # One read, then parsed and stored from memory (by a background thread, or by a
            # move of the upload's bytes when they need no change): a folder drop is thousands.
            source = upload.storage_key
            try:
                reader = self.storage.open(source)
            except ObjectNotFound:
                if Instance.objects.filter(upload=upload).exists():
                    raise  # stored by an earlier run, which died before recording it: counted
                # An earlier run moved the bytes to their instance key and died before writing
                # the instance: they are taken from there (and put back if this run fails too).
                source = _moved_key(self.case, upload)
                reader = self.storage.open(source)
            with reader:
                data = reader.read()
            self.move_source = source
            try:
                self.file_ingest(io.BytesIO(data), len(data), path, in_archive=False)
            finally:
                self.move_source = None
        else:
            with seekable_upload(upload) as (fp, actual_size):
                self.file_ingest(fp, actual_size, path, in_archive=False)

    # -- one file --------------------------------------------------------------------------------

    def file_ingest(self, fp: BinaryIO, size: int, path: str, *, in_archive: bool) -> None:
        """Ingest one file; a bad file becomes a FileProblem, never an exception."""
        try:
            self._file_ingest(fp, size, path, in_archive=in_archive)
        except FileRejected as rejected:
            self.problem(path, rejected.code, rejected.message)
        except _BatchLost:
            raise
        except Exception as exc:
            upload_id = self.upload.pk if self.upload else None
            logger.warning("file of upload %s could not be ingested: %s", upload_id, type(exc).__name__)
            self.problem(path, FileProblem.Code.UNREADABLE, messages.UNREADABLE)

    def _file_ingest(self, fp: BinaryIO, size: int, path: str, *, in_archive: bool) -> None:
        fp.seek(0)
        head = fp.read(HEAD_BYTES)
        kind = file_sniff(head, path)
        if kind is FileKind.EMPTY:
            self.problem(path, FileProblem.Code.EMPTY, messages.EMPTY_FILE)
        elif kind is FileKind.ZIP:
            if in_archive:
                self.problem(path, FileProblem.Code.UNSAFE_ARCHIVE, messages.NESTED_ARCHIVE)
            else:
                # zipfile seeks to every entry; a large read buffer would be refilled (and
                # discarded) at each seek, reading the archive several times over.
                raw = getattr(fp, "raw", None)
                self.archive_ingest(raw if raw is not None and raw.seekable() else fp, size)
        elif kind is FileKind.PROGRAM:
            viewer = posixpath.splitext(path.lower())[1] in VIEWER_EXTENSIONS
            self.problem(
                path,
                FileProblem.Code.SKIPPED_PROGRAM,
                messages.PROGRAM_SKIPPED if viewer else messages.PROGRAM_NOT_IMAGE,
            )
            if not viewer and self.upload is not None:
                self.tally(self.upload).serious_problems += 1
        elif kind is FileKind.VIEWER_FILE:
            self.problem(path, FileProblem.Code.SKIPPED_PROGRAM, messages.PROGRAM_SKIPPED)
        elif kind is FileKind.OTHER:
            self.problem(path, FileProblem.Code.NOT_DICOM, messages.NOT_DICOM)
        else:
            self.dicom_ingest(fp, size, path, move_from=None if in_archive else self.move_source)

    def dicom_ingest(self, fp: BinaryIO, size: int, path: str, *, move_from: str | None = None) -> None:
        """Parse one DICOM file and queue its instance; its bytes are stored under a new key.

        ``move_from`` is the key of the upload that is this very file: if the bytes need no
        change they are moved from there, not copied (the upload then has no raw bytes left).
        """
        assert self.upload is not None
        header = header_read(fp, size)
        if header.is_dicomdir:
            # The disc's index: not an image. Inside a zip it orders the walk (archive_ingest).
            folder = posixpath.dirname(path)
            self.referenced.extend(posixpath.join(folder, ref) for ref in header.referenced_files)
            return
        if header.sop_instance_uid in self.seen:
            self.problem(path, FileProblem.Code.DUPLICATE, messages.DUPLICATE)
            return
        self.seen.add(header.sop_instance_uid)
        key = f"dicom/{self.case.public_id}/{uuid.uuid4().hex}"
        pending = _Pending(header=header, storage_key=key, size=size, path=path, upload=self.upload)
        if move_from is not None and isinstance(fp, io.BytesIO) and not header.preamble_suspicious:
            pending.storage_key = _moved_key(self.case, self.upload)
            pending.moved_from = self.upload.storage_key
            if move_from != pending.storage_key:  # else: moved by a run that died since
                pending.saved = self.saver.submit_move(move_from, pending.storage_key)
            self.tally(self.upload).moved = True
        elif isinstance(fp, io.BytesIO):
            # Already in memory: stored by a background thread while we parse the next file.
            # getvalue() hands back the bytes the BytesIO was made from, without a copy.
            data = fp.getvalue()
            if header.preamble_suspicious:
                data = PREAMBLE_ZEROS + data[len(PREAMBLE_ZEROS) :]
            pending.saved = self.saver.submit(key, data)
        else:
            fp.seek(0)
            source: BinaryIO = fp
            if header.preamble_suspicious:
                source = io.BufferedReader(PreambleZeroingReader(fp), buffer_size=1024 * 1024)  # type: ignore[assignment]
            self.storage.save(key, source, size)
        if header.preamble_suspicious:
            self.problem(path, FileProblem.Code.PREAMBLE_CLEARED, messages.PREAMBLE_CLEARED)
        self.batch.append(pending)

    # -- a zip ----------------------------------------------------------------------------------

    def archive_ingest(self, fp: BinaryIO, size: int) -> None:
        try:
            listing = archive_open(fp, size, self.limits)
        except ArchiveRefused as refused:
            self.problem("", refused.code, refused.message)
            return
        for entry_problem in listing.problems:
            self.problem(entry_problem.path, entry_problem.code, entry_problem.message)
        indexes = [e for e in listing.entries if posixpath.basename(e.path).upper() == "DICOMDIR"]
        others = [e for e in listing.entries if posixpath.basename(e.path).upper() != "DICOMDIR"]
        # This zip's own index only (a batch may hold other uploads with indexes of their own).
        outer_referenced, self.referenced = self.referenced, []
        with tempfile.TemporaryFile() as scratch:
            # The disc's index first: the images are then read in the order it lists them.
            for entry in indexes:
                self.entry_ingest(listing.archive, entry, scratch)
            for entry in entries_in_order(others, self.referenced):
                self.entry_ingest(listing.archive, entry, scratch)
                if len(self.batch) >= BATCH_SIZE:
                    self.flush()
            # A large entry is read from the scratch file, which is gone once we leave.
            self.flush()
        referenced, self.referenced = self.referenced, outer_referenced
        if referenced:
            present = {entry.path.upper() for entry in others}
            if any(path.upper() not in present for path in referenced):
                self.problem("DICOMDIR", FileProblem.Code.MISSING_FILES, messages.MISSING_FILES)

    def entry_ingest(self, archive: zipfile.ZipFile, entry: Entry, scratch: BinaryIO) -> None:
        """Unpack one entry (in memory if small, else to the scratch file) and ingest it."""
        try:
            if entry.size <= IN_MEMORY_ENTRY_BYTES:
                source: BinaryIO = io.BytesIO(entry_read(archive, entry))
                written = entry.size
            else:
                written = entry_extract(archive, entry, scratch)
                source = scratch
        except EntryRefused as refused:
            self.problem(entry.path, refused.code, refused.message)
            return
        except Exception:  # damaged, encrypted, or an unknown compression method
            self.problem(entry.path, FileProblem.Code.UNREADABLE, messages.UNREADABLE)
            return
        self.file_ingest(source, written, entry.path, in_archive=True)

    # -- the database ---------------------------------------------------------------------------

    def _study(self, header: DicomHeader) -> Study:
        study = self.studies.get(header.study_instance_uid)
        if study is None:
            values = {
                "study_date": header.study_date,
                "study_time": header.study_time,
                "description": header.study_description,
                "accession_number": header.accession_number,
                "study_id": header.study_id,
                "body_part": header.body_part,
                "referring_physician": header.referring_physician,
                "patient_name_in_files": header.patient_name,
                "patient_id_in_files": header.patient_id,
                "patient_birth_date_in_files": header.patient_birth_date,
                "patient_sex_in_files": header.patient_sex,
            }
            study, created = Study.objects.get_or_create(
                case=self.case, study_instance_uid=header.study_instance_uid, defaults=values
            )
            if created:
                self.outcome.new_studies += 1
            else:
                # Fill what earlier files of the study left blank; never overwrite.
                blanks = {name: value for name, value in values.items() if value and not getattr(study, name)}
                if blanks:
                    Study.objects.filter(pk=study.pk).update(**blanks)
                    for name, value in blanks.items():
                        setattr(study, name, value)
                    self.patient_filled |= bool(
                        {"patient_name_in_files", "patient_birth_date_in_files"} & set(blanks)
                    )
            self.studies[header.study_instance_uid] = study
        if patient_names_differ(study.patient_name_in_files, header.patient_name) or (
            study.patient_birth_date_in_files
            and header.patient_birth_date
            and study.patient_birth_date_in_files.strip() != header.patient_birth_date.strip()
        ):
            self.mismatch_seen = True
        return study

    def _series(self, study: Study, header: DicomHeader) -> Series:
        cache_key = (header.study_instance_uid, header.series_instance_uid)
        series = self.series.get(cache_key)
        if series is None:
            values = {
                "series_number": header.series_number,
                "modality": header.modality,
                "description": header.series_description,
                "body_part": header.body_part,
            }
            series, created = Series.objects.get_or_create(
                study=study, series_instance_uid=header.series_instance_uid, defaults=values
            )
            if not created:
                blanks = {
                    name: value
                    for name, value in values.items()
                    if value not in (None, "") and getattr(series, name) in (None, "")
                }
                if blanks:
                    Series.objects.filter(pk=series.pk).update(**blanks)
            self.series[cache_key] = series
        return series

    def flush(self) -> None:
        """Write the pending instances and problems in one transaction; files that turn out to
        be duplicates are deleted. Uploads read in full before this call are then settled."""
        settling, self.read = self.read, []
        batch, self.batch = self.batch, []
        stored = []
        for pending in batch:
            if pending.saved is not None:
                try:
                    pending.saved.result()
                except Exception as exc:
                    logger.warning(
                        "storing a file of upload %s failed: %s", pending.upload.pk, type(exc).__name__
                    )
                    self.discard(pending)
                    self.problem(
                        pending.path, FileProblem.Code.UNREADABLE, messages.UNREADABLE, upload=pending.upload
                    )
                    continue
            stored.append(pending)
        landed: dict[int, int] = {}
        try:
            with ingest_transaction():
                if stored:
                    landed, series_ids, study_ids = self._instances_insert(stored)
                    counts_recompute(series_ids=series_ids, study_ids=study_ids)
                    self.outcome.series_ids |= series_ids
                self.problems_save()
        except Exception as exc:
            for pending in stored:
                self.discard(pending)
            raise _BatchLost from exc
        for upload_id, count in landed.items():
            self.outcome.uploads[upload_id].accepted += count
            self.outcome.accepted += count
        for upload_id in settling:
            self.outcome.uploads[upload_id].settled = True

    def discard(self, pending: _Pending) -> None:
        """Undo storing a file that did not become an instance: delete its copy, or put bytes
        moved from an upload back under the upload's key (a failed upload keeps its bytes)."""
        if pending.moved_from is None:
            self.storage.delete(pending.storage_key)
            return
        self.tally(pending.upload).moved = False
        if self.storage.exists(pending.storage_key):
            self.storage.move(pending.storage_key, pending.moved_from)

    def _instances_insert(self, batch: list[_Pending]) -> tuple[dict[int, int], set[int], set[int]]:
        """Insert the batch's instances; return how many landed per upload, and the series and
        studies they went to."""
        placed: list[tuple[_Pending, Series]] = []
        for pending in batch:
            study = self._study(pending.header)
            placed.append((pending, self._series(study, pending.header)))
        # Two workers adding to one study take turns from here to the commit: each one's counts
        # are then computed after the other's rows are committed, so none is lost (a count
        # computed by an UPDATE that merely waited on a row lock could miss them).
        list(
            Study.objects.select_for_update()
            .filter(pk__in={series.study_id for _, series in placed})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        # Insert first, then read back every row of these UIDs in the case: one query tells
        # which of ours landed, which were there before (a duplicate, or our own from a retried
        # run), and which lost a race with another worker on the unique constraint.
        Instance.objects.bulk_create(
            [
                Instance(
                    series=series,
                    sop_instance_uid=pending.header.sop_instance_uid,
                    sop_class_uid=pending.header.sop_class_uid[:64],
                    instance_number=pending.header.instance_number,
                    transfer_syntax_uid=pending.header.transfer_syntax_uid[:64],
                    rows=pending.header.rows,
                    columns=pending.header.columns,
                    number_of_frames=pending.header.number_of_frames,
                    bits_allocated=pending.header.bits_allocated,
                    slice_location=pending.header.slice_location,
                    storage_key=pending.storage_key,
                    size=pending.size,
                    preamble_cleared=pending.header.preamble_suspicious,
                    upload=pending.upload,
                )
                for pending, series in placed
            ],
            ignore_conflicts=True,
        )
        rows: dict[str, list[tuple[int, str, int | None]]] = {}
        for uid, pk, key, upload_id in Instance.objects.filter(
            series__study__case=self.case, sop_instance_uid__in=[p.header.sop_instance_uid for p, _ in placed]
        ).values_list("sop_instance_uid", "pk", "storage_key", "upload_id"):
            rows.setdefault(uid, []).append((pk, key, upload_id))
        landed: dict[int, int] = {}
        extra: list[int] = []
        for pending, _ in placed:
            found = rows.get(pending.header.sop_instance_uid, [])
            ours = [pk for pk, key, _ in found if key == pending.storage_key]
            others = [(pk, upload_id) for pk, key, upload_id in found if key != pending.storage_key]
            upload_id = pending.upload.pk
            if ours and not others:
                landed[upload_id] = landed.get(upload_id, 0) + 1
                continue
            # Stored once: the image that was there first stays; our copy goes.
            extra.extend(ours)
            self.storage.delete(pending.storage_key)
            if any(other_upload == upload_id for _, other_upload in others):
                landed[upload_id] = landed.get(upload_id, 0) + 1  # a retried ingest: not a duplicate
            else:
                self.problem(
                    pending.path, FileProblem.Code.DUPLICATE, messages.DUPLICATE, upload=pending.upload
                )
        if extra:  # the same image in another series of the case (the constraint is per series)
            Instance.objects.filter(pk__in=extra).delete()
        series_ids = {series.pk for _, series in placed}
        study_ids = {series.study_id for _, series in placed}
        return landed, series_ids, study_ids


@contextlib.contextmanager
def ingest_transaction() -> Iterator[None]:
    """A transaction whose commit does not wait for the database's disk flush.

    A commit waits ~5 ms for the WAL fsync on ordinary disks. If the database crashes, the last
    moments of ingest may be lost (never half-written: WAL order is kept); the uploads then stay
    INGESTING and are claimed again after INGEST_STALE_AFTER, which re-ingests them harmlessly.
    The commit that ends an upload DONE is an ordinary (durable) one, which flushes the WAL of
    every earlier commit with it: once an upload is DONE (and its raw bytes deleted), its
    instances are on disk. Only this transaction is affected (SET LOCAL).
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _moved_key(case: CaseRow, upload: Upload) -> str:
    """The instance key of a single-file upload whose bytes are moved, not copied: fixed by the
    upload, so that a run claimed again after a crash finds bytes an earlier run moved."""
    return f"dicom/{case.public_id}/{upload.public_id.hex}"


def counts_recompute(*, series_ids: Iterable[int], study_ids: Iterable[int]) -> None:
    """Set instance/series counts and modalities from the rows themselves (one UPDATE each)."""
    instance_counts = (
        Instance.objects.filter(series=OuterRef("pk"))
        .order_by()
        .values("series")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Series.objects.filter(pk__in=list(series_ids)).update(
        instance_count=Coalesce(Subquery(instance_counts), 0)
    )
    per_study = Series.objects.filter(study=OuterRef("pk")).order_by().values("study")
    Study.objects.filter(pk__in=list(study_ids)).update(
        series_count=Coalesce(Subquery(per_study.annotate(n=Count("pk")).values("n")), 0),
        instance_count=Coalesce(Subquery(per_study.annotate(n=Sum("instance_count")).values("n")), 0),
        modalities=Coalesce(
            Subquery(
                per_study.exclude(modality="")
                .annotate(codes=StringAgg("modality", ",", distinct=True, order_by="modality"))
                .values("codes")
            ),
            Value(""),
        ),
    )


def _failure_log(exc: BaseException, upload_ids: Iterable[int]) -> None:
    # The traceback's frames only: exception messages may quote what the file holds.
    logger.error(
        "ingest of uploads %s failed: %s\n%s",
        ",".join(str(upload_id) for upload_id in upload_ids),
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )


def imaging_ingest(
    *,
    uploads: list[Upload],
    retry_ids: Iterable[int] = (),
    limits: ArchiveLimits = DEFAULT_LIMITS,
    previews_now: bool = False,
) -> IngestOutcome:
    """Ingest imaging uploads of one case (DICOM files, DICOMDIRs, zips of CDs) as one batch.

    Precondition: every upload is of one case, imaging, and claimed by this worker
    (INGESTING). ``retry_ids`` are uploads claimed again after their worker died: their old
    problems go (their instances are recognised in flush). Good files are kept whatever happens
    to the others; a file we cannot read is a problem of its upload, never the batch's; a crash
    of our own fails the uploads not yet settled (with a problem in plain words) and keeps the
    rest. Previews are queued (or, with ``previews_now``, drawn before returning: the demo seed
    and the benchmark want them). Upload statuses are left to the caller.
    """
    retry_ids = set(retry_ids)
    if retry_ids:
        FileProblem.objects.filter(upload_id__in=retry_ids).delete()
    case = uploads[0].case
    storage = tenant_storage()
    with _gc_relaxed(), _BackgroundSaver(storage) as saver:
        run = _ImagingRun(case, storage, saver, limits)
        try:
            for upload in uploads:
                run.upload_ingest(upload, retried=upload.pk in retry_ids)
            run.flush()
        except Exception as exc:  # the database failed us, not a file
            _failure_log(exc, [upload.pk for upload in uploads])
            for pending in run.batch:  # read and stored, never written to the database
                with contextlib.suppress(Exception):
                    if pending.saved is not None:
                        pending.saved.result()
                with contextlib.suppress(Exception):
                    run.discard(pending)
            run.batch = []
            crashed = [upload for upload in uploads if not run.tally(upload).settled]
            with contextlib.suppress(Exception):
                FileProblem.objects.bulk_create(
                    FileProblem(
                        case=case,
                        upload=upload,
                        path=upload.relative_path[:1000],
                        code=FileProblem.Code.UNREADABLE,
                        message=messages.UPLOAD_FAILED,
                    )
                    for upload in crashed
                )
            for upload in crashed:
                tally = run.tally(upload)
                tally.serious_problems += 1
                tally.settled = True
                tally.accepted = 0  # ended FAILED: staff look at the raw bytes, which stay
    outcome = run.outcome
    outcome.failed = all(tally.failed for tally in outcome.uploads.values())
    if outcome.accepted:
        if outcome.new_studies or run.mismatch_seen or run.patient_filled:
            # Only a new study (or a new name in one) can make the case name two patients.
            case_patient_consistency_check(case=case, mismatch_seen=run.mismatch_seen)
        if previews_now:
            for series_id in sorted(outcome.series_ids):
                series_preview_ensure(series_id=series_id)
        else:
            series_preview_schedule(series_ids=sorted(outcome.series_ids))
    if outcome.new_studies:
        # Reports may have arrived before their images.
        case_reports_match(case=case)
    return outcome


@contextlib.contextmanager
def _gc_relaxed() -> Iterator[None]:
    """Collect garbage less often for the duration (see GC_THRESHOLD_WHILE_INGESTING)."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], GC_THRESHOLD_WHILE_INGESTING), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def imaging_uploads_claim(*, upload_id: int) -> list[tuple[Upload, bool]]:
    """Claim ``upload_id`` and, if it is a small imaging upload, up to
    :data:`CLAIM_BATCH_UPLOADS` - 1 other small imaging uploads of its case that wait.

    Each is claimed if RECEIVED, or INGESTING but stale (its worker died: the other tasks of
    its batch returned long ago, so nobody else would ever pick it up). Rows another worker is
    claiming at this moment are skipped, never waited for: two workers racing over a folder
    drop's uploads split them. Returns ``(upload, reclaimed)`` pairs, ``upload_id`` first if it
    was claimed; empty if there was nothing for us to do (the upload is done, or being done).
    """
    waiting = Upload.objects.filter(pk=upload_id).values_list("status", "updated").first()
    now = timezone.now()
    if waiting is None or not (
        waiting[0] == Upload.Status.RECEIVED
        or (waiting[0] == Upload.Status.INGESTING and waiting[1] < now - INGEST_STALE_AFTER)
    ):
        # The common case in a folder drop: another task's batch took this upload. One quick
        # read, no transaction, no lock.
        return []
    table = connection.ops.quote_name(Upload._meta.db_table)
    imaging = Upload.Kind.IMAGING.value
    sql = f"""
        WITH target AS (
            SELECT case_id, kind, COALESCE(length, 0) AS length FROM {table} WHERE id = %(id)s
        ), picked AS (
            SELECT u.id, u.status AS was
            FROM {table} u JOIN target t ON u.case_id = t.case_id AND u.kind = t.kind
            WHERE (u.status = %(received)s OR (u.status = %(ingesting)s AND u.updated < %(stale)s))
              AND (
                u.id = %(id)s
                OR (
                    t.kind = %(imaging)s
                    AND t.length <= %(max_bytes)s
                    AND COALESCE(u.length, 0) <= %(max_bytes)s
                )
              )
            ORDER BY u.id = %(id)s DESC, u.id
            LIMIT %(limit)s
            FOR UPDATE OF u SKIP LOCKED
        )
        UPDATE {table} u SET status = %(ingesting)s, updated = %(now)s
        FROM picked WHERE u.id = picked.id
        RETURNING u.id, picked.was
    """  # noqa: S608 - the table name is ours, every value is a parameter
    params: dict[str, int | str | datetime] = {
        "id": upload_id,
        "received": Upload.Status.RECEIVED.value,
        "ingesting": Upload.Status.INGESTING.value,
        "stale": now - INGEST_STALE_AFTER,
        "imaging": imaging,
        "max_bytes": CLAIM_BATCH_MAX_BYTES,
        "limit": CLAIM_BATCH_UPLOADS,
        "now": now,
    }
    with ingest_transaction(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        claimed = dict(cursor.fetchall())
    if not claimed:
        return []
    uploads = Upload.objects.select_related("case").filter(pk__in=claimed).order_by("pk")
    ordered = sorted(uploads, key=lambda upload: (upload.pk != upload_id, upload.pk))
    return [(upload, claimed[upload.pk] == Upload.Status.INGESTING) for upload in ordered]


def uploads_finish(*, outcome: IngestOutcome, uploads: list[Upload]) -> None:
    """End each upload DONE or FAILED, then delete the raw bytes of those whose every file is
    now stored on its own (DONE, nothing set aside but benign files).

    The status commit is durable (not :func:`ingest_transaction`): it flushes the WAL of the
    instances committed before it, so no DONE upload's bytes are deleted before its instances
    are safely in the database.
    """
    now = timezone.now()
    failed = outcome.failed_upload_ids
    done = [upload for upload in uploads if upload.pk not in failed]
    with transaction.atomic():
        if failed:
            Upload.objects.filter(pk__in=failed, status=Upload.Status.INGESTING).update(
                status=Upload.Status.FAILED, updated=now
            )
        if done:
            Upload.objects.filter(
                pk__in=[upload.pk for upload in done], status=Upload.Status.INGESTING
            ).update(status=Upload.Status.DONE, updated=now)
    storage = tenant_storage()
    for upload in done:
        tally = outcome.uploads.get(upload.pk)
        if tally is not None and tally.serious_problems == 0 and not tally.moved:
            try:
                storage.delete(upload.storage_key)
            except Exception as exc:  # the upload is done; a stray copy is only wasted space
                logger.warning("raw bytes of upload %s were not deleted: %s", upload.pk, type(exc).__name__)


def upload_ingest_run(
    *, upload_id: int, limits: ArchiveLimits = DEFAULT_LIMITS, previews_now: bool = False
) -> IngestOutcome | None:
    """Claim ``upload_id`` (and, for a folder drop, a batch of its case's other waiting imaging
    uploads), ingest them, and end each DONE or FAILED; None if there was nothing ours to do.

    Never raises for anything in a file: a crash of our own is recorded as a FileProblem in
    plain words, logged by type and upload id only, and the uploads it hit end FAILED.
    """
    claimed = imaging_uploads_claim(upload_id=upload_id)
    if not claimed:
        return None
    uploads = [upload for upload, _ in claimed]
    retry_ids = {upload.pk for upload, reclaimed in claimed if reclaimed}
    if uploads[0].kind == Upload.Kind.REPORT:
        outcome = _report_ingest(upload=uploads[0])
    else:
        outcome = imaging_ingest(
            uploads=uploads, retry_ids=retry_ids, limits=limits, previews_now=previews_now
        )
    uploads_finish(outcome=outcome, uploads=uploads)
    return outcome


def _report_ingest(*, upload: Upload) -> IngestOutcome:
    try:
        report = report_ingest(upload=upload)
    except Exception as exc:
        _failure_log(exc, [upload.pk])
        with contextlib.suppress(Exception):
            FileProblem.objects.create(
                case=upload.case,
                upload=upload,
                path=upload.relative_path[:1000],
                code=FileProblem.Code.UNREADABLE,
                message=messages.UPLOAD_FAILED,
            )
        report = None
    accepted = int(report is not None)
    tally = UploadTally(accepted=accepted, serious_problems=1 - accepted, settled=True)
    return IngestOutcome(accepted=accepted, failed=report is None, uploads={upload.pk: tally})


def uploads_stalled_requeue(*, now: datetime | None = None) -> int:
    """Queue ingest again for uploads nobody is working on: INGESTING past
    :data:`INGEST_STALE_AFTER` (their worker died and the broker never redelivered the task) or
    RECEIVED for as long (the task was lost before it reached a worker). One task per case is
    enough, since a task claims the case's other waiting uploads with it. Returns how many were
    queued; running it twice only queues tasks that find nothing left to do."""
    from imaging.tasks import upload_ingest

    cutoff = (now or timezone.now()) - INGEST_STALE_AFTER
    stalled = (
        Upload.objects.filter(
            status__in=[Upload.Status.RECEIVED, Upload.Status.INGESTING], updated__lt=cutoff
        )
        .order_by("case_id", "id")
        .distinct("case_id")
        .values_list("id", flat=True)
    )
    upload_ids = list(stalled)
    for upload_id in upload_ids:
        upload_ingest.delay(upload_id)
    return len(upload_ids)
