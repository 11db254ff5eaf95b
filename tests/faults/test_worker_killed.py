"""kill -9 of the Celery worker in the middle of ingesting a folder drop (one upload per file,
as the browser sends a CD's folder): a new worker finishes it, every file is ingested exactly
once, no instance is duplicated, and nothing is left stuck. The dead worker's uploads are taken
up again after their heartbeat goes stale (the new worker runs with a short window, as the
sweep would after its three minutes), not after the broker's visibility timeout."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pydicom
import pytest
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context

from imaging.ingest.pipeline import uploads_stalled_requeue
from imaging.models import FileProblem, Instance, Series, Upload
from imaging.tasks import upload_ingest
from imaging.tests.fixtures.ingest import case_make, dicom_renamed, upload_make
from intake.models import Case
from storage.tenant import tenant_storage
from tests.faults.processes import FAULT_QUEUE, kill, stop, worker_start
from tests.live import committed
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FILES = 400
STALE_SECONDS = "6"


@pytest.fixture
def folder_drop() -> Iterator[tuple[Case, list[int]]]:
    """A case with FILES uploads received (committed: the workers are other processes)."""

    def create() -> tuple[Case, list[int]]:
        with schema_context("neuro"):
            case = case_make("neuro")
            # One study and series, FILES images in it.
            template = pydicom.dcmread(io.BytesIO(dicom_renamed("CT_small.dcm")))
            ids = []
            for number in range(1, FILES + 1):
                data = dicom_renamed(
                    "CT_small.dcm",
                    StudyInstanceUID=template.StudyInstanceUID,
                    SeriesInstanceUID=template.SeriesInstanceUID,
                    InstanceNumber=number,
                )
                ids.append(upload_make(case, data, path=f"DICOM/IM{number:05d}").pk)
            return case, ids

    case, ids = committed(create)
    yield case, ids

    def remove() -> None:
        with schema_context("neuro"):
            tenant_storage().delete_prefix(f"uploads/{case.public_id}")
            tenant_storage().delete_prefix(f"dicom/{case.public_id}")
            Case.objects.filter(pk=case.pk).delete()

    committed(remove)


def test_a_worker_killed_mid_ingest_is_replaced_and_every_file_is_ingested_once(
    folder_drop: tuple[Case, list[int]], tmp_path: Path
) -> None:
    case, upload_ids = folder_drop
    log = tmp_path / "workers.log"
    first = worker_start(name="doomed", log=log)
    second = None
    try:
        with schema_context("neuro"):
            for upload_id in upload_ids:  # one task per file, as the tus server queues them
                upload_ingest.apply_async([upload_id], queue=FAULT_QUEUE)
            uploads = Upload.objects.filter(case=case)

            def mid_way() -> bool:
                # A batch is being ingested and has stored some of its images already (or an
                # earlier batch is done): the kill lands in the middle of the work.
                if not uploads.filter(status=Upload.Status.INGESTING).exists():
                    return False
                return uploads.filter(status=Upload.Status.DONE).exists() or (
                    len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) >= 20
                )

            wait_until(mid_way, timeout=300, interval=0.05, message="the ingest never got going")
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

            instances = Instance.objects.filter(series__study__case=case)
            assert instances.count() == FILES
            assert instances.values("sop_instance_uid").distinct().count() == FILES
            per_upload = dict(instances.values_list("upload_id").annotate(n=Count("pk")))
            assert per_upload == dict.fromkeys(upload_ids, 1)  # each file once, from its own upload
            series = Series.objects.get(study__case=case)
            assert series.instance_count == FILES
            assert not FileProblem.objects.filter(case=case).exists()  # no file blamed for our crash
            assert set(uploads.values_list("system_problem", flat=True)) == {""}
            # Every instance's bytes are there.
            stored = set(tenant_storage().list_keys(f"dicom/{case.public_id}"))
            assert set(instances.values_list("storage_key", flat=True)) <= stored
    finally:
        print(log.read_text(errors="replace")[-6000:])  # shown when the test fails
        kill(first)
        if second is not None:
            stop(second)
