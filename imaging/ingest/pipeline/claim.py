"""The claim step: uploads taken by one worker with a conditional UPDATE (so a task run twice
does nothing the second time), ended DONE or FAILED, and requeued when their worker died."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from imaging.ingest.pipeline.batch import IngestOutcome
from imaging.ingest.pipeline.index import ingest_transaction
from imaging.ingest.pipeline.store import IN_MEMORY_ENTRY_BYTES
from imaging.models import Upload
from storage.tenant import tenant_storage
from tenants.schema import activate_schema, current_schema_name

logger = logging.getLogger(__name__)

# While a worker ingests uploads it touches their ``updated`` every INGEST_HEARTBEAT
# (:class:`IngestHeartbeat`); an upload INGESTING whose heartbeat is older than
# INGEST_STALE_AFTER lost its worker (killed, out of memory, its machine gone) and is claimed
# again by the next task or sweep, within minutes rather than the broker's visibility timeout.
# (Settings INGEST_HEARTBEAT_SECONDS and INGEST_STALE_SECONDS: 30 s and 3 minutes.)
INGEST_HEARTBEAT = timedelta(seconds=settings.INGEST_HEARTBEAT_SECONDS)
INGEST_STALE_AFTER = timedelta(seconds=settings.INGEST_STALE_SECONDS)
# A folder drop's uploads claimed by one task. Large enough that the per-upload cost (claim,
# study lock, counts, previews, consistency) is paid once per batch; small enough that two
# workers share a 1,000-file folder and a batch finishes in seconds.
CLAIM_BATCH_UPLOADS = 200
# Uploads larger than this (a zip of a whole CD) are claimed alone, so that a batch of small
# files never waits behind one, and a large one never waits behind a batch.
CLAIM_BATCH_MAX_BYTES = IN_MEMORY_ENTRY_BYTES


def imaging_uploads_claim(*, upload_id: int) -> list[tuple[Upload, bool]]:
    """Claim ``upload_id`` and, if it is a small imaging upload, up to
    :data:`CLAIM_BATCH_UPLOADS` - 1 other small imaging uploads of its case that wait.

    Each is claimed if RECEIVED, or INGESTING but stale (its worker died: the other tasks of
    its batch returned long ago, so nobody else would ever pick it up). Rows another worker is
    claiming at this moment are skipped, never waited for: two workers racing over a folder
    drop's uploads split them. Returns ``(upload, reclaimed)`` pairs, ``upload_id`` first if it
    was claimed (``reclaimed``: an earlier run touched it, whose worker died or whose storage
    failed); empty if there was nothing for us to do (the upload is done, or being done).
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
        UPDATE {table} u
        SET status = %(ingesting)s, updated = %(now)s, ingest_attempts = u.ingest_attempts + 1
        FROM picked WHERE u.id = picked.id
        RETURNING u.id, picked.was = %(ingesting)s OR u.ingest_attempts > 1
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
    return [(upload, bool(claimed[upload.pk])) for upload in ordered]


class IngestHeartbeat:
    """While in effect, a thread of its own touches the claimed uploads' ``updated`` every
    ``interval`` (on its own connection, so whatever the ingest holds open does not hide it), so
    that :func:`uploads_stalled_requeue` and the claim tell an upload being worked on from one
    whose worker died. A heartbeat that cannot write (the database away for a moment) tries
    again at the next beat; one that waits on a row lock gives up after a moment, never
    holding the ingest up.
    """

    def __init__(self, upload_ids: Iterable[int], *, interval: timedelta = INGEST_HEARTBEAT) -> None:
        self.upload_ids = list(upload_ids)
        self.interval = interval.total_seconds()
        self.schema = current_schema_name()
        self.beats = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-heartbeat", daemon=True)

    def __enter__(self) -> IngestHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            activate_schema(self.schema)
            while not self._stopped.wait(self.interval):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                Upload.objects.filter(pk__in=self.upload_ids, status=Upload.Status.INGESTING).update(
                    updated=timezone.now()
                )
            self.beats += 1
        except Exception as exc:  # the next beat tries again; the claim's window allows for it
            logger.warning("ingest heartbeat failed: %s", type(exc).__name__)
            connection.close()


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
                status=Upload.Status.FAILED, system_problem="", updated=now
            )
        if done:
            Upload.objects.filter(
                pk__in=[upload.pk for upload in done], status=Upload.Status.INGESTING
            ).update(status=Upload.Status.DONE, system_problem="", updated=now)
    storage = tenant_storage()
    for upload in done:
        tally = outcome.uploads.get(upload.pk)
        if tally is not None and tally.serious_problems == 0 and not tally.moved and not tally.kept_in_batch:
            try:
                storage.delete(upload.storage_key)
            except Exception as exc:  # the upload is done; a stray copy is only wasted space
                logger.warning("raw bytes of upload %s were not deleted: %s", upload.pk, type(exc).__name__)


def uploads_release_for_retry(*, uploads: list[Upload], problem: str) -> None:
    """Storage failed under the run: hand its uploads back (RECEIVED, to be claimed by the
    retry), with ``problem`` for staff, and drop the problems this run recorded for them (the
    retry finds them again). Nothing ends DONE: the patient reads "still being checked"."""
    from imaging.models import FileProblem

    ids = [upload.pk for upload in uploads]
    with transaction.atomic():
        FileProblem.objects.filter(upload_id__in=ids).delete()
        Upload.objects.filter(pk__in=ids, status=Upload.Status.INGESTING).update(
            status=Upload.Status.RECEIVED, system_problem=problem, updated=timezone.now()
        )


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
