"""Redis (broker and cache) stopped and started again under a running worker and a real server
(our own redis-server on a free port, never the machine's): the worker does not crash and
reconnects; an upload finished while Redis is away answers at once (its ingest could not be
queued: the stalled-upload sweep queues it once Redis is back); every upload is ingested."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django_tenants.utils import schema_context

from accounts.models import User
from imaging.models import Instance, Upload
from imaging.tests.fixtures.ingest import dicom_renamed
from intake.models import Case
from intake.tests.test_tus_live import Patient, _sign_in
from storage.tenant import tenant_storage
from tests.faults.processes import (
    BASE_DIR,
    BIN,
    OwnRedis,
    committed,
    own_redis,
    stop,
    web_server,
    worker_start,
)
from tests.live import child_env
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def committed_case() -> Iterator[Case]:
    def create() -> Case:
        with schema_context("neuro"):
            return Case.objects.create(owner=User.objects.get(email="patient@neuro.example.com"))

    case = committed(create)
    yield case

    def remove() -> None:
        with schema_context("neuro"):
            tenant_storage().delete_prefix(f"uploads/{case.public_id}")
            tenant_storage().delete_prefix(f"dicom/{case.public_id}")
            Case.objects.filter(pk=case.pk).delete()

    committed(remove)


def _upload(patient: Patient, case: Case, data: bytes, name: str) -> tuple[requests.Response, float]:
    """Send ``data`` as one tus upload; the last PATCH's answer and how long it took."""
    pairs = {"case": str(case.public_id), "kind": "imaging", "filename": name,
             "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    metadata = ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items())
    headers = {**patient.headers, "Tus-Resumable": "1.0.0"}
    created = requests.post(
        patient.endpoint, headers={**headers, "Upload-Length": str(len(data)), "Upload-Metadata": metadata},
        timeout=60,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    started = time.monotonic()
    answer = requests.patch(
        patient.url(created.headers["Location"]),
        data=data,
        headers={**headers, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        timeout=60,
    )
    return answer, time.monotonic() - started


def _sweep(redis: OwnRedis) -> None:
    """What beat queues every two minutes: the stalled-upload sweep, run by the worker."""
    subprocess.run(
        [str(BIN / "celery"), "-A", "config", "call", "imaging.uploads_ingest_resume_all"],
        cwd=BASE_DIR, env=child_env(REDIS_URL=redis.url), check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def _statuses(case: Case) -> list[str]:
    with schema_context("neuro"):
        return list(Upload.objects.filter(case=case).order_by("pk").values_list("status", flat=True))


def test_the_worker_and_uploads_survive_redis_going_away(committed_case: Case, tmp_path: Path) -> None:
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
            answer, _ = _upload(patient, committed_case, dicom_renamed("CT_small.dcm"), "IM1")
            assert answer.status_code == 204
            wait_until(lambda: _statuses(committed_case) == ["done"], timeout=120, message="first upload")

            redis.stop()
            answer, seconds = _upload(patient, committed_case, dicom_renamed("CT_small.dcm"), "IM2")
            # The patient's upload is complete; queueing its ingest failed quietly and fast.
            assert answer.status_code == 204, answer.text
            assert seconds < 8, seconds
            assert _statuses(committed_case) == ["done", "received"]
            wait_until(
                lambda: "Cannot connect" in log.read_text(errors="replace"),
                timeout=60,
                message="the worker never noticed Redis was gone",
            )
            assert worker.poll() is None, "the worker crashed when Redis went away"

            redis.start()
            wait_until(
                lambda: log.read_text(errors="replace").count("Connected to redis") >= 2,
                timeout=120,
                message="the worker did not reconnect",
            )

            # The sweep (beat's, every two minutes) queues what could not be queued, once the
            # upload has waited past INGEST_STALE_SECONDS.
            def swept_and_done() -> bool:
                _sweep(redis)
                return _statuses(committed_case) == ["done", "done"]

            wait_until(
                swept_and_done,
                timeout=240,
                interval=3,
                message="the upload finished while Redis was away was never ingested",
            )
            assert worker.poll() is None
            with schema_context("neuro"):
                assert Instance.objects.filter(series__study__case=committed_case).count() == 2
        finally:
            stop(worker)
