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
import traceback
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO

from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
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
    archive_open,
    entries_in_order,
    entry_extract,
)
from intake.models import Case, FileProblem, Instance, Series, Study, Upload
from storage.tenant import TenantStorage, tenant_storage

logger = logging.getLogger(__name__)

# Instances written to the database in one transaction when a zip is unpacked.
BATCH_SIZE = 250
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
        self.referenced: list[str] = []

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
                self.archive_ingest(fp, size)
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
        fp.seek(0)
        source: BinaryIO = fp
        if header.preamble_suspicious:
            source = io.BufferedReader(PreambleZeroingReader(fp), buffer_size=1024 * 1024)  # type: ignore[assignment]
        self.storage.save(key, source, size)
        if header.preamble_suspicious:
            self.problem(path, FileProblem.Code.PREAMBLE_CLEARED, messages.PREAMBLE_CLEARED)
        self.batch.append(_Pending(header=header, storage_key=key, size=size, path=path))

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
        with tempfile.TemporaryFile() as scratch:
            # The disc's index first: the images are then read in the order it lists them.
            for entry in indexes:
                self.entry_ingest(listing.archive, entry, scratch)
            for entry in entries_in_order(others, self.referenced):
                self.entry_ingest(listing.archive, entry, scratch)
                if len(self.batch) >= BATCH_SIZE:
                    self.flush()
        if self.referenced:
            present = {entry.path.upper() for entry in others}
            if any(path.upper() not in present for path in self.referenced):
                self.problem("DICOMDIR", FileProblem.Code.MISSING_FILES, messages.MISSING_FILES)

    def entry_ingest(self, archive: zipfile.ZipFile, entry: Entry, scratch: BinaryIO) -> None:
        try:
            written = entry_extract(archive, entry, scratch)
        except EntryRefused as refused:
            self.problem(entry.path, refused.code, refused.message)
            return
        except Exception:  # damaged, encrypted, or an unknown compression method
            self.problem(entry.path, FileProblem.Code.UNREADABLE, messages.UNREADABLE)
            return
        self.file_ingest(scratch, written, entry.path, in_archive=True)

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
        try:
            with transaction.atomic():
                landed, series_ids, study_ids = self._instances_insert(batch)
        except Exception:
            for pending in batch:
                self.storage.delete(pending.storage_key)
            raise
        self.outcome.accepted += landed
        self.outcome.series_ids |= series_ids
        # After the commit, so a concurrent worker's instances are counted by one of us.
        counts_recompute(series_ids=series_ids, study_ids=study_ids)
        self.problems_save()

    def _instances_insert(self, batch: list[_Pending]) -> tuple[int, set[int], set[int]]:
        placed: list[tuple[_Pending, Series]] = []
        for pending in batch:
            study = self._study(pending.header)
            placed.append((pending, self._series(study, pending.header)))
        uids = [pending.header.sop_instance_uid for pending in batch]
        existing = dict(
            Instance.objects.filter(series__study__case=self.case, sop_instance_uid__in=uids).values_list(
                "sop_instance_uid", "upload_id"
            )
        )
        fresh: list[tuple[_Pending, Series]] = []
        already = 0
        for pending, series in placed:
            uid = pending.header.sop_instance_uid
            if uid in existing:
                self.storage.delete(pending.storage_key)
                if existing[uid] == self.upload.pk:
                    already += 1  # a retried ingest of this very upload
                else:
                    self.problem(pending.path, FileProblem.Code.DUPLICATE, messages.DUPLICATE)
            else:
                fresh.append((pending, series))
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
                for pending, series in fresh
            ],
            ignore_conflicts=True,
        )
        # Another worker may have inserted the same image between our check and our insert.
        landed_keys = set(
            Instance.objects.filter(
                series_id__in={series.pk for _, series in fresh},
                sop_instance_uid__in=[pending.header.sop_instance_uid for pending, _ in fresh],
            ).values_list("storage_key", flat=True)
        )
        for pending, _ in fresh:
            if pending.storage_key not in landed_keys:
                self.storage.delete(pending.storage_key)
                self.problem(pending.path, FileProblem.Code.DUPLICATE, messages.DUPLICATE)
        series_ids = {series.pk for _, series in placed}
        study_ids = {series.study_id for _, series in placed}
        return (
            already + sum(1 for pending, _ in fresh if pending.storage_key in landed_keys),
            series_ids,
            study_ids,
        )


def counts_recompute(*, series_ids: Iterable[int], study_ids: Iterable[int]) -> None:
    """Set instance/series counts and modalities from the rows themselves (one UPDATE each)."""
    series_ids, study_ids = list(series_ids), list(study_ids)
    instance_counts = (
        Instance.objects.filter(series=OuterRef("pk"))
        .order_by()
        .values("series")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Series.objects.filter(pk__in=series_ids).update(instance_count=Coalesce(Subquery(instance_counts), 0))
    series_counts = (
        Series.objects.filter(study=OuterRef("pk"))
        .order_by()
        .values("study")
        .annotate(n=Count("pk"))
        .values("n")
    )
    series_instances = (
        Series.objects.filter(study=OuterRef("pk"))
        .order_by()
        .values("study")
        .annotate(n=Sum("instance_count"))
        .values("n")
    )
    Study.objects.filter(pk__in=study_ids).update(
        series_count=Coalesce(Subquery(series_counts), 0),
        instance_count=Coalesce(Subquery(series_instances), 0),
    )
    for study_id in study_ids:
        codes = sorted(
            set(Series.objects.filter(study_id=study_id).values_list("modality", flat=True)) - {""}
        )
        Study.objects.filter(pk=study_id).update(modalities=",".join(sorted(codes))[:64])


def imaging_ingest(
    *, upload: Upload, limits: ArchiveLimits = DEFAULT_LIMITS, previews_now: bool = False
) -> IngestOutcome:
    """Ingest an imaging upload (a DICOM file, a DICOMDIR, or a zip of a CD).

    Good files are kept whatever happens to the others. Previews are queued (or, with
    ``previews_now``, drawn before returning: the demo seed and the benchmark want them).
    """
    run = _ImagingRun(upload, limits)
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


def upload_ingest_claim(*, upload_id: int) -> Upload | None:
    """Claim the upload for this worker (RECEIVED → INGESTING, or a stale INGESTING); None if
    another worker has it or it is done."""
    now = timezone.now()
    claimed = (
        Upload.objects.filter(pk=upload_id)
        .filter(
            Q(status=Upload.Status.RECEIVED)
            | Q(status=Upload.Status.INGESTING, updated__lt=now - INGEST_STALE_AFTER)
        )
        .update(status=Upload.Status.INGESTING, updated=now)
    )
    if not claimed:
        return None
    return Upload.objects.select_related("case").get(pk=upload_id)


def upload_ingest_run(
    *, upload_id: int, limits: ArchiveLimits = DEFAULT_LIMITS, previews_now: bool = False
) -> IngestOutcome | None:
    """Claim and ingest one upload, ending it DONE or FAILED; None if it was not ours to do.

    Never raises for anything in the file: a crash of our own is recorded as a FileProblem in
    plain words, logged by type and upload id only, and the upload ends FAILED.
    """
    upload = upload_ingest_claim(upload_id=upload_id)
    if upload is None:
        return None
    try:
        if upload.kind == Upload.Kind.REPORT:
            report = report_ingest(upload=upload)
            outcome = IngestOutcome(accepted=int(report is not None), failed=report is None)
        else:
            outcome = imaging_ingest(upload=upload, limits=limits, previews_now=previews_now)
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
    Upload.objects.filter(pk=upload.pk, status=Upload.Status.INGESTING).update(
        status=Upload.Status.FAILED if outcome.failed else Upload.Status.DONE, updated=timezone.now()
    )
    return outcome
