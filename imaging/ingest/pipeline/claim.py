"""The claim step: uploads taken by one worker with a conditional UPDATE (so a task run twice
does nothing the second time), ended DONE or FAILED, and requeued when their worker died."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from imaging.ingest.pipeline.batch import IngestOutcome
from imaging.ingest.pipeline.index import ingest_transaction
from imaging.ingest.pipeline.store import IN_MEMORY_ENTRY_BYTES
from imaging.models import Upload
from storage.tenant import tenant_storage

logger = logging.getLogger(__name__)

INGEST_STALE_AFTER = timedelta(minutes=30)
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
