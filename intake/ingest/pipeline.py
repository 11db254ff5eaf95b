"""The ingest services: from an upload's bytes to studies, series, instances and reports.

Entry points:

- :func:`upload_ingest_enqueue` (the tus server calls it once an upload's bytes are complete)
- :func:`upload_ingest_run` (the Celery task calls it; so do the demo seed and the benchmark)

An upload is claimed with a conditional UPDATE (RECEIVED → INGESTING), so running the task twice
does nothing the second time; an upload stuck in INGESTING for :data:`INGEST_STALE_AFTER` (its
worker died) may be claimed again, and re-ingesting it is harmless: files already stored from
the same upload are recognised and not reported as duplicates.

Concurrency: a folder drop sends one upload per file, so many workers add instances to the
same series at once. Studies and series are found with ``get_or_create`` on their unique
constraints; instances are inserted with ``ON CONFLICT DO NOTHING`` and checked afterwards; and
counts are recomputed by one UPDATE with a subquery, after the inserts commit, never by
read-modify-write.
"""

from __future__ import annotations

import contextlib
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
from datetime import timedelta
from typing import BinaryIO

from django.contrib.postgres.aggregates import StringAgg
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from intake.ingest import messages
from intake.ingest.consistency import case_patient_consistency_check, patient_names_differ
from intake.ingest.dicom import (
    HEAD_BYTES,
    VIEWER_EXTENSIONS,
    DicomHeader,
    FileKind,
    FileRejected,
    PreambleZeroingReader,
    file_sniff,
    header_read,
)
from intake.ingest.preview import series_preview_ensure, series_preview_schedule
from intake.ingest.reports import case_reports_match, report_ingest, seekable_upload
from intake.ingest.unpack import (
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
from intake.models import Case, FileProblem, Instance, Series, Study, Upload
from storage.tenant import TenantStorage, tenant_storage

logger = logging.getLogger(__name__)

# Instances written to the database in one transaction when a zip is unpacked.
BATCH_SIZE = 250
# Zip entries up to this size are unpacked in memory (and stored by background threads); larger
# ones are streamed through a scratch file. A DICOM slice is 0.1-2 MB; a multi-frame file more.
IN_MEMORY_ENTRY_BYTES = 16 * MiB
SAVER_THREADS = 4
SAVER_MAX_BYTES = 64 * MiB
PREAMBLE_ZEROS = b"\x00" * 128
INGEST_STALE_AFTER = timedelta(minutes=30)

# Problems that do not make an upload "failed" when nothing else was kept (a DICOMDIR alone, a
# viewer's help file, an image sent twice).
_BENIGN = {FileProblem.Code.SKIPPED_PROGRAM, FileProblem.Code.DUPLICATE, FileProblem.Code.PREAMBLE_CLEARED}


def upload_ingest_enqueue(*, upload: Upload) -> None:
    """Queue the ingest of ``upload`` once the current transaction commits.

    Precondition: ``upload.status`` is RECEIVED (its bytes are complete in storage). Safe to
    call twice: the task claims the upload, and only one claim succeeds.
    """
    from intake.tasks import upload_ingest

    upload_id = upload.pk
    transaction.on_commit(lambda: upload_ingest.delay(upload_id))


@dataclass
class IngestOutcome:
    accepted: int = 0  # instances stored (imaging) or 1 for a report kept
    problems: int = 0
    failed: bool = False
    series_ids: set[int] = field(default_factory=set)
    new_studies: int = 0


@dataclass
class _Pending:
    header: DicomHeader
    storage_key: str
    size: int
    path: str
    saved: Future[int] | None = None  # set while a background thread stores the bytes


class _BackgroundSaver:
    """Stores in-memory files on a few threads, with a cap on the bytes waiting to be written.

    Durable writes (fsync, or an HTTP PUT to object storage) wait on I/O and release the GIL,
    so storing the previous files overlaps parsing the next ones. The cap keeps memory bounded
    however large the zip: ``submit`` blocks while :data:`SAVER_MAX_BYTES` are in flight.
    """

    def __init__(self, storage: TenantStorage) -> None:
        self.storage = storage
        self.pool = ThreadPoolExecutor(max_workers=SAVER_THREADS, thread_name_prefix="ingest-save")
        self.budget = threading.BoundedSemaphore(SAVER_MAX_BYTES // MiB)

    def __enter__(self) -> _BackgroundSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def submit(self, key: str, data: memoryview) -> Future[int]:
        units = max(1, min(len(data) // MiB + 1, SAVER_MAX_BYTES // MiB))
        for _ in range(units):
            self.budget.acquire()

        def save() -> int:
            try:
                return self.storage.save(key, io.BytesIO(data), len(data))
            finally:
                for _ in range(units):
                    self.budget.release()

        return self.pool.submit(save)


class _ImagingRun:
    """The state of ingesting one imaging upload (a file, or a zip of a CD)."""

    def __init__(self, upload: Upload, limits: ArchiveLimits) -> None:
        self.upload = upload
        self.case: Case = upload.case
        self.limits = limits
        self.storage: TenantStorage = tenant_storage()
        self.batch: list[_Pending] = []
        self.problems: list[FileProblem] = []
        self.serious_problems = 0
        self.seen: set[str] = set()
        self.studies: dict[str, Study] = {}
        self.series: dict[tuple[str, str], Series] = {}
        self.outcome = IngestOutcome()
        self.mismatch_seen = False
        self.patient_filled = False
        self.referenced: list[str] = []
        self.saver: _BackgroundSaver | None = None

    # -- problems ------------------------------------------------------------------------------

    def problem(self, path: str, code: str, message: str) -> None:
        self.problems.append(
            FileProblem(
                case=self.case, upload=self.upload, path=path[:1000], code=code, message=message[:300]
            )
        )
        if code not in _BENIGN:
            self.serious_problems += 1
        if len(self.problems) >= BATCH_SIZE:
            self.problems_save()

    def problems_save(self) -> None:
        if self.problems:
            FileProblem.objects.bulk_create(self.problems)
            self.outcome.problems += len(self.problems)
            self.problems = []

    # -- one file --------------------------------------------------------------------------------

    def file_ingest(self, fp: BinaryIO, size: int, path: str, *, in_archive: bool) -> None:
        """Ingest one file; a bad file becomes a FileProblem, never an exception."""
        try:
            self._file_ingest(fp, size, path, in_archive=in_archive)
        except FileRejected as rejected:
            self.problem(path, rejected.code, rejected.message)
        except Exception as exc:
            logger.warning("file of upload %s could not be ingested: %s", self.upload.pk, type(exc).__name__)
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
            if not viewer:
                self.serious_problems += 1
        elif kind is FileKind.VIEWER_FILE:
            self.problem(path, FileProblem.Code.SKIPPED_PROGRAM, messages.PROGRAM_SKIPPED)
        elif kind is FileKind.OTHER:
            self.problem(path, FileProblem.Code.NOT_DICOM, messages.NOT_DICOM)
        else:
            self.dicom_ingest(fp, size, path)

    def dicom_ingest(self, fp: BinaryIO, size: int, path: str) -> None:
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
        pending = _Pending(header=header, storage_key=key, size=size, path=path)
        if isinstance(fp, io.BytesIO) and self.saver is not None:
            # A zip entry already in memory: stored by a background thread while we parse the
            # next one (a durable write waits on the disk, not on Python).
            data = fp.getbuffer()
            if header.preamble_suspicious:
                data = memoryview(bytes(PREAMBLE_ZEROS) + bytes(data[len(PREAMBLE_ZEROS) :]))
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
        with tempfile.TemporaryFile() as scratch, _BackgroundSaver(self.storage) as self.saver:
            # The disc's index first: the images are then read in the order it lists them.
            for entry in indexes:
                self.entry_ingest(listing.archive, entry, scratch)
            for entry in entries_in_order(others, self.referenced):
                self.entry_ingest(listing.archive, entry, scratch)
                if len(self.batch) >= BATCH_SIZE:
                    self.flush()
            self.flush()  # while the saver is still there to wait for
        self.saver = None
        if self.referenced:
            present = {entry.path.upper() for entry in others}
            if any(path.upper() not in present for path in self.referenced):
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
        """Write the pending instances; files that turn out to be duplicates are deleted."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        stored = []
        for pending in batch:
            if pending.saved is not None:
                try:
                    pending.saved.result()
                except Exception as exc:
                    logger.warning(
                        "storing a file of upload %s failed: %s", self.upload.pk, type(exc).__name__
                    )
                    self.storage.delete(pending.storage_key)
                    self.problem(pending.path, FileProblem.Code.UNREADABLE, messages.UNREADABLE)
                    continue
            stored.append(pending)
        batch = stored
        if not batch:
            self.problems_save()
            return
        try:
            with ingest_transaction():
                landed, series_ids, study_ids = self._instances_insert(batch)
                counts_recompute(series_ids=series_ids, study_ids=study_ids)
                self.problems_save()
        except Exception:
            for pending in batch:
                self.storage.delete(pending.storage_key)
            raise
        self.outcome.accepted += landed
        self.outcome.series_ids |= series_ids

    def _instances_insert(self, batch: list[_Pending]) -> tuple[int, set[int], set[int]]:
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
                    slice_location=pending.header.slice_location,
                    storage_key=pending.storage_key,
                    size=pending.size,
                    preamble_cleared=pending.header.preamble_suspicious,
                    upload=self.upload,
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
        landed = 0
        extra: list[int] = []
        for pending, _ in placed:
            found = rows.get(pending.header.sop_instance_uid, [])
            ours = [pk for pk, key, _ in found if key == pending.storage_key]
            others = [(pk, upload_id) for pk, key, upload_id in found if key != pending.storage_key]
            if ours and not others:
                landed += 1
                continue
            # Stored once: the image that was there first stays; our copy goes.
            extra.extend(ours)
            self.storage.delete(pending.storage_key)
            if any(upload_id == self.upload.pk for _, upload_id in others):
                landed += 1  # a retried ingest of this very upload: not a duplicate
            else:
                self.problem(pending.path, FileProblem.Code.DUPLICATE, messages.DUPLICATE)
        if extra:  # the same image in another series of the case (the constraint is per series)
            Instance.objects.filter(pk__in=extra).delete()
        series_ids = {series.pk for _, series in placed}
        study_ids = {series.study_id for _, series in placed}
        return landed, series_ids, study_ids


@contextlib.contextmanager
def ingest_transaction() -> Iterator[None]:
    """A transaction whose commit does not wait for the database's disk flush.

    A commit waits ~5 ms for the WAL fsync on ordinary disks, and a folder drop is one upload
    (three commits) per file. If the database crashes, the last moments of ingest may be lost
    (never half-written: WAL order is kept); the upload then stays INGESTING and is claimed
    again after INGEST_STALE_AFTER, which re-ingests it harmlessly. Only this transaction is
    affected (SET LOCAL), whatever else the connection is used for afterwards.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


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


def imaging_ingest(
    *,
    upload: Upload,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    previews_now: bool = False,
    retry: bool = False,
) -> IngestOutcome:
    """Ingest an imaging upload (a DICOM file, a DICOMDIR, or a zip of a CD).

    Good files are kept whatever happens to the others. Previews are queued (or, with
    ``previews_now``, drawn before returning: the demo seed and the benchmark want them).
    """
    run = _ImagingRun(upload, limits)
    if retry:
        # A retried run starts its problem list afresh (its instances are recognised in flush).
        FileProblem.objects.filter(upload=upload).delete()
    path = str(upload.relative_path or upload.metadata.get("filename") or "")
    with seekable_upload(upload) as (fp, size):
        run.file_ingest(fp, size, path, in_archive=False)
    run.flush()
    run.problems_save()
    outcome = run.outcome
    outcome.failed = outcome.accepted == 0 and run.serious_problems > 0
    if outcome.accepted:
        if outcome.new_studies or run.mismatch_seen or run.patient_filled:
            # Only a new study (or a new name in one) can make the case name two patients.
            case_patient_consistency_check(case=run.case, mismatch_seen=run.mismatch_seen)
        if previews_now:
            for series_id in sorted(outcome.series_ids):
                series_preview_ensure(series_id=series_id)
        else:
            series_preview_schedule(series_ids=sorted(outcome.series_ids))
    if outcome.new_studies:
        # Reports may have arrived before their images.
        case_reports_match(case=run.case)
    return outcome


def upload_ingest_claim(*, upload_id: int) -> tuple[Upload, bool] | None:
    """Claim the upload for this worker: RECEIVED → INGESTING, or else a stale INGESTING (its
    worker died). Returns the upload and whether it was such a re-claim; None if another
    worker has it or it is done."""
    now = timezone.now()
    uploads = Upload.objects.filter(pk=upload_id)
    reclaimed = False
    with ingest_transaction():
        if not uploads.filter(status=Upload.Status.RECEIVED).update(
            status=Upload.Status.INGESTING, updated=now
        ):
            stale = uploads.filter(status=Upload.Status.INGESTING, updated__lt=now - INGEST_STALE_AFTER)
            if not stale.update(updated=now):
                return None
            reclaimed = True
    return Upload.objects.select_related("case").get(pk=upload_id), reclaimed


def upload_ingest_run(
    *, upload_id: int, limits: ArchiveLimits = DEFAULT_LIMITS, previews_now: bool = False
) -> IngestOutcome | None:
    """Claim and ingest one upload, ending it DONE or FAILED; None if it was not ours to do.

    Never raises for anything in the file: a crash of our own is recorded as a FileProblem in
    plain words, logged by type and upload id only, and the upload ends FAILED.
    """
    claimed = upload_ingest_claim(upload_id=upload_id)
    if claimed is None:
        return None
    upload, reclaimed = claimed
    try:
        if upload.kind == Upload.Kind.REPORT:
            report = report_ingest(upload=upload)
            outcome = IngestOutcome(accepted=int(report is not None), failed=report is None)
        else:
            outcome = imaging_ingest(upload=upload, limits=limits, previews_now=previews_now, retry=reclaimed)
    except Exception as exc:
        # The traceback's frames only: exception messages may quote what the file holds.
        logger.error(
            "ingest of upload %s failed: %s\n%s",
            upload.pk,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        with contextlib.suppress(Exception):
            FileProblem.objects.create(
                case=upload.case,
                upload=upload,
                path=upload.relative_path[:1000],
                code=FileProblem.Code.UNREADABLE,
                message=messages.UPLOAD_FAILED,
            )
        outcome = IngestOutcome(failed=True)
    with ingest_transaction():
        Upload.objects.filter(pk=upload.pk, status=Upload.Status.INGESTING).update(
            status=Upload.Status.FAILED if outcome.failed else Upload.Status.DONE, updated=timezone.now()
        )
    return outcome
