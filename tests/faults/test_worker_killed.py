"""kill -9 of the Celery worker in the middle of ingesting a folder drop (one upload per file,
or tars of many files as the browser sends a CD's folder now): a new worker finishes it, every
file is ingested exactly once, no instance is duplicated, and nothing is left stuck. The dead
worker's uploads are taken up again after their heartbeat goes stale (the new worker runs with
a short window, as the sweep would after its three minutes), not after the broker's visibility
timeout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context

from imaging.ingest.pipeline import uploads_stalled_requeue
from imaging.models import Instance, Upload
from imaging.tasks import upload_ingest
from intake.models import Case
from storage.tenant import tenant_storage
from tests.faults.processes import FAULT_QUEUE, kill, stop, worker_start
from tests.faults.uploads import (
    folder_drop_make,
    folder_drop_remove,
    ingested_once,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

STALE_SECONDS = "6"


# As the browser used to send a folder (one upload per file), and as it sends one now (tars of
# many files, whose images are kept where they lie in them: a retried run must recognise the
# ones a killed run committed as its own, not add them twice or call them duplicates).
SHAPES = {"one upload per file": (400, 1), "tars of 30 files": (1200, 30)}


@pytest.fixture(params=list(SHAPES.values()), ids=list(SHAPES))
def folder_drop(request: pytest.FixtureRequest) -> Iterator[tuple[Case, list[int], int]]:
    """A case with its folder's uploads received (committed: the workers are other processes)."""
    files, per_upload = request.param
    case, ids = folder_drop_make(files, per_upload=per_upload)
    yield case, ids, per_upload
    folder_drop_remove(case)


def test_a_worker_killed_mid_ingest_is_replaced_and_every_file_is_ingested_once(
    folder_drop: tuple[Case, list[int], int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, upload_ids, per_upload = folder_drop
    # The sweep's requeued tasks go where this test's workers read (in production, the one
    # queue every worker reads): once the new worker has run the queued tasks (each finding
    # its upload taken) before the dead one's uploads went stale, only the sweep takes them up.
    monkeypatch.setattr(
        upload_ingest, "delay", lambda *args: upload_ingest.apply_async(args, queue=FAULT_QUEUE)
    )
    log = tmp_path / "workers.log"
    first = worker_start(name="doomed", log=log)
    second = None
    try:
        with schema_context("neuro"):
            for upload_id in upload_ids:  # one task per upload, as the tus server queues them
                upload_ingest.apply_async([upload_id], queue=FAULT_QUEUE)
            uploads = Upload.objects.filter(case=case)
            instances = Instance.objects.filter(series__study__case=case)

            def mid_way() -> bool:
                # A batch is being ingested and has stored some of its images already (or
                # committed some, or an earlier batch is done): the kill lands in the middle.
                if not uploads.filter(status=Upload.Status.INGESTING).exists():
                    return False
                return (
                    uploads.filter(status=Upload.Status.DONE).exists()
                    or instances.exists()
                    or len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) >= 20
                )

            wait_until(mid_way, timeout=300, interval=0.02, message="the ingest never got going")
            kill(first)  # SIGKILL: no clean-up, no ack, the task dies with its process
            left = dict(uploads.values_list("status").annotate(n=Count("pk")))
            assert left.get(Upload.Status.INGESTING), left  # work was cut off mid-way

            second = worker_start(
                name="replacement", log=log, INGEST_STALE_SECONDS=STALE_SECONDS, INGEST_HEARTBEAT_SECONDS="1"
            )

            def all_done() -> bool:
                if uploads.exclude(status=Upload.Status.DONE).exists():
                    # What the sweep does every two minutes, as if it were that much later.
                    uploads_stalled_requeue(now=timezone.now() + timedelta(minutes=5))
                    return False
                return True

            wait_until(all_done, timeout=600, interval=3, message="the folder drop was never finished")

            ingested_once(case, upload_ids, per_upload=per_upload)
            if per_upload > 1:  # the batches hold their images: none was deleted
                assert all(tenant_storage().exists(upload.storage_key) for upload in uploads)
    finally:
        print(log.read_text(errors="replace")[-6000:])  # shown when the test fails
        kill(first)
        if second is not None:
            stop(second)
