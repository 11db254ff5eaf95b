"""Redis (broker and cache) killed and started again, empty, under a running worker in the
middle of a folder drop's ingest, with a patient uploading meanwhile through a real server
(gunicorn); our own redis-server on a free port, never the machine's. The worker does not crash
and reconnects by itself (kombu could not restore its unacknowledged message: logged, not
fatal, see config.celery_app); the upload finished while Redis was away is complete for the
patient (its ingest could not be queued); the stalled-upload sweep queues what could not be
queued and what Redis lost; every file is ingested exactly once and nothing is left orphaned."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django_tenants.utils import schema_context

from config.celery_app import app
from imaging.models import Series, Upload
from imaging.tasks import upload_ingest, uploads_ingest_resume_all
from imaging.tests.fixtures.ingest import dicom_renamed
from intake.models import Case
from intake.tests.test_tus_live import Patient, _sign_in
from tests.faults.processes import FAULT_QUEUE, OwnRedis, own_redis, stop, web_server, worker_start
from tests.faults.uploads import folder_drop_make, folder_drop_remove, ingested_once
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FILES = 40


@pytest.fixture
def folder_drop() -> Iterator[tuple[Case, list[int]]]:
    case, ids = folder_drop_make(FILES)
    yield case, ids
    folder_drop_remove(case)


def _upload(patient: Patient, case: Case, number: int) -> requests.Response:
    """One more image of the folder drop's series (ingested already), sent as a tus upload:
    the last PATCH's answer."""
    series = Series.objects.select_related("study").get(study__case=case)
    data = dicom_renamed(
        "CT_small.dcm",
        StudyInstanceUID=series.study.study_instance_uid,
        SeriesInstanceUID=series.series_instance_uid,
        InstanceNumber=number,
    )
    pairs = {"case": str(case.public_id), "kind": "imaging", "filename": f"IM{number:05d}"}
    metadata = ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items())
    headers = {**patient.headers, "Tus-Resumable": "1.0.0"}
    created = requests.post(
        patient.endpoint,
        headers={**headers, "Upload-Length": str(len(data)), "Upload-Metadata": metadata},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    return requests.patch(
        patient.url(created.headers["Location"]),
        data=data,
        headers={**headers, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        timeout=60,
    )


def _publish(redis: OwnRedis, task: object, *args: object, queue: str = FAULT_QUEUE) -> None:
    with app.connection_for_write(redis.url) as broker:
        task.apply_async(args, queue=queue, connection=broker)  # type: ignore[attr-defined]


def test_a_worker_outlives_a_redis_restart_and_every_file_is_ingested_once(
    folder_drop: tuple[Case, list[int]], tmp_path: Path
) -> None:
    case, upload_ids = folder_drop
    log = tmp_path / "processes.log"
    with own_redis() as redis, web_server(log=log, REDIS_URL=redis.url) as server:
        worker = worker_start(
            name="survivor",
            log=log,
            REDIS_URL=redis.url,
            INGEST_STALE_SECONDS="6",
            INGEST_HEARTBEAT_SECONDS="1",
        )
        try:
            patient = _sign_in(server, "patient@neuro.example.com")
            with schema_context("neuro"):
                uploads = Upload.objects.filter(case=case)
                for upload_id in upload_ids:  # one task per file, as the tus server queues them
                    _publish(redis, upload_ingest, upload_id)
                wait_until(
                    lambda: uploads.filter(status=Upload.Status.DONE).exists(),
                    timeout=120,
                    interval=0.05,
                    message="the ingest never got going",
                )

                redis.stop()
                # The patient's upload completes while Redis is away; queueing its ingest fails quietly.
                answer = _upload(patient, case, FILES + 1)
                assert answer.status_code == 204, answer.text
                wait_until(
                    lambda: "Cannot connect" in log.read_text(errors="replace"),
                    timeout=60,
                    message="the worker never noticed Redis was gone",
                )
                assert worker.poll() is None, "the worker crashed when Redis went away"

                redis.forget()  # the tasks queued in it too: the sweep must find their uploads
                redis.start()
                wait_until(
                    lambda: log.read_text(errors="replace").count("Connected to") >= 2,
                    timeout=60,
                    message="the worker did not reconnect",
                )
                # A patient uploading after Redis is back is queued at once.
                assert _upload(patient, case, FILES + 2).status_code == 204

                # The sweep beat queues every two minutes queues what could not be queued (and
                # what the worker dropped when Redis went), once it has waited past the stale window.
                def swept_and_done() -> bool:
                    if not uploads.exclude(status=Upload.Status.DONE).exists():
                        return True
                    _publish(redis, uploads_ingest_resume_all, queue=f"{FAULT_QUEUE}-housekeeping")
                    return False

                wait_until(
                    swept_and_done, timeout=180, interval=3, message="some uploads were never ingested"
                )
                assert worker.poll() is None
                ingested_once(case, list(uploads.order_by("pk").values_list("pk", flat=True)))
        finally:
            print(log.read_text(errors="replace")[-8000:])  # shown when the test fails
            stop(worker)
