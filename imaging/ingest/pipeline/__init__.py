"""The ingest services: from an upload's bytes to studies, series, instances and reports.

Entry points:

- :func:`upload_ingest_enqueue` (the tus server calls it once an upload's bytes are complete)
- :func:`upload_ingest_run` (the Celery task calls it; so do the demo seed and the benchmark)

The steps, one module each: :mod:`.claim` (take uploads, end them DONE or FAILED, requeue the
stalled), :mod:`.unpack` (read each upload's files, a zip's entries, parse DICOM headers),
:mod:`.store` (each image's bytes under its own key, on background threads), :mod:`.index`
(studies, series and instances written, counts recomputed); :mod:`.batch` holds the state they
share. This module runs them in order.

Uploads are claimed with a conditional UPDATE (RECEIVED → INGESTING), so running the task twice
does nothing the second time; while a worker ingests, a heartbeat keeps its uploads' ``updated``
fresh, and an upload INGESTING whose heartbeat is older than :data:`INGEST_STALE_AFTER` (minutes:
its worker died) may be claimed again, and re-ingesting it is harmless: files already stored from
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

An image that lies as it is inside its upload (a file of a folder drop's tar, an entry of a zip
stored without compression) and needs no change is not written again: its instance points at
its place in the upload's bytes (imaging.instance_files), which then stay with the case. Once
an imaging upload is DONE with nothing set aside but benign files and no image kept in it, its
raw bytes are deleted: every image in it is stored under its own key. A FAILED upload (or one with a file we
could not take) keeps its bytes so staff can look at what the patient sent. A single-file
upload that is a valid DICOM needing no change is not copied at all: its bytes are moved to
their instance key (fixed by the upload, so a retried run finds them), and moved back if the
instance is not written.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterable, Iterator

from django.db import transaction

from imaging.identity import case_identity_refresh
from imaging.ingest import messages
from imaging.ingest.consistency import case_patient_consistency_check
from imaging.ingest.pipeline.batch import IngestOutcome, UploadTally, failure_log
from imaging.ingest.pipeline.claim import (
    CLAIM_BATCH_MAX_BYTES,
    CLAIM_BATCH_UPLOADS,
    INGEST_HEARTBEAT,
    INGEST_STALE_AFTER,
    IngestHeartbeat,
    imaging_uploads_claim,
    uploads_finish,
    uploads_release_for_retry,
    uploads_stalled_requeue,
)
from imaging.ingest.pipeline.index import counts_recompute, ingest_transaction
from imaging.ingest.pipeline.store import BackgroundSaver
from imaging.ingest.pipeline.unpack import ImagingRun
from imaging.ingest.preview import series_preview_ensure, series_preview_schedule
from imaging.ingest.reports import case_reports_match, report_ingest
from imaging.ingest.unpack import DEFAULT_LIMITS, ArchiveLimits
from imaging.models import FileProblem, Upload
from storage.base import StorageUnavailable
from storage.tenant import tenant_storage

logger = logging.getLogger(__name__)

__all__ = [
    "CLAIM_BATCH_MAX_BYTES",
    "CLAIM_BATCH_UPLOADS",
    "INGEST_HEARTBEAT",
    "INGEST_STALE_AFTER",
    "IngestHeartbeat",
    "IngestOutcome",
    "UploadTally",
    "counts_recompute",
    "imaging_ingest",
    "imaging_uploads_claim",
    "ingest_transaction",
    "upload_ingest_enqueue",
    "upload_ingest_run",
    "uploads_finish",
    "uploads_stalled_requeue",
]

# Allocations between two collections of the youngest generation while a batch is ingested
# (Python's default is 700). Parsing a header allocates thousands of objects, so the default
# collects every few files and walks everything alive each time (a batch's headers, rows,
# Django's caches): about a tenth of the CPU. Cycles are still collected, just less often.
GC_THRESHOLD_WHILE_INGESTING = 50_000


def upload_ingest_enqueue(*, upload: Upload) -> None:
    """Queue the ingest of ``upload`` once the current transaction commits.

    Precondition: ``upload.status`` is RECEIVED (its bytes are complete in storage). Safe to
    call twice: the task claims the upload, and only one claim succeeds. Never fails or holds up
    the request: if the broker cannot take the task (Redis away), the upload stays RECEIVED and
    the stalled-upload sweep queues it within minutes (:func:`uploads_stalled_requeue`).
    """
    upload_id = upload.pk
    transaction.on_commit(lambda: _ingest_publish(upload_id))


def _ingest_publish(upload_id: int) -> None:
    from imaging.tasks import upload_ingest

    try:
        # One attempt: the broker's connect timeout bounds it; the sweep is the retry.
        upload_ingest.apply_async((upload_id,), retry=False)
    except Exception as exc:
        logger.warning("ingest of upload %s not queued (the sweep will): %s", upload_id, type(exc).__name__)


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
    with _gc_relaxed(), BackgroundSaver(storage) as saver:
        run = ImagingRun(case, storage, saver, limits)
        try:
            for upload in uploads:
                run.upload_ingest(upload, retried=upload.pk in retry_ids)
            run.flush()
        except StorageUnavailable:
            # Nothing half-written: what this run stored and did not commit goes again.
            for pending in run.batch:
                with contextlib.suppress(Exception):
                    if pending.saved is not None:
                        pending.saved.result()
                with contextlib.suppress(Exception):
                    run.discard(pending)
            run.batch = []
            raise
        except Exception as exc:  # the database failed us, not a file
            failure_log(exc, [upload.pk for upload in uploads])
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
            # And may name someone other than the patient declared on the case.
            case_identity_refresh(case=case)
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


def upload_ingest_run(
    *, upload_id: int, limits: ArchiveLimits = DEFAULT_LIMITS, previews_now: bool = False
) -> IngestOutcome | None:
    """Claim ``upload_id`` (and, for a folder drop, a batch of its case's other waiting imaging
    uploads), ingest them, and end each DONE or FAILED; None if there was nothing ours to do.

    Never raises for anything in a file: a crash of our own is recorded as a FileProblem in
    plain words, logged by type and upload id only, and the uploads it hit end FAILED. Raises
    :class:`StorageUnavailable` when storage failed under the run (disk full, object store
    down): the uploads are then RECEIVED again, for the task to retry, never DONE.
    """
    claimed = imaging_uploads_claim(upload_id=upload_id)
    if not claimed:
        return None
    uploads = [upload for upload, _ in claimed]
    retry_ids = {upload.pk for upload, reclaimed in claimed if reclaimed}
    with IngestHeartbeat(upload.pk for upload in uploads):
        try:
            if uploads[0].kind == Upload.Kind.REPORT:
                outcome = _report_ingest(upload=uploads[0])
            else:
                outcome = imaging_ingest(
                    uploads=uploads, retry_ids=retry_ids, limits=limits, previews_now=previews_now
                )
        except StorageUnavailable as exc:
            # Ours, not the patient's: the uploads wait (RECEIVED) for the task's retry, staff
            # see a system problem, and the patient's page says the files are still being checked.
            logger.warning(
                "ingest of uploads %s waits for storage: %s",
                ",".join(str(upload.pk) for upload in uploads),
                type(exc.__cause__ or exc).__name__,
            )
            uploads_release_for_retry(uploads=uploads, problem=messages.STORAGE_FAILING)
            raise
        uploads_finish(outcome=outcome, uploads=uploads)
    return outcome


def _report_ingest(*, upload: Upload) -> IngestOutcome:
    try:
        report = report_ingest(upload=upload)
    except StorageUnavailable:
        raise
    except Exception as exc:
        failure_log(exc, [upload.pk])
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
