"""The broker down while a patient sends a case, end to end: a real server (gunicorn) and a
worker on a Redis of our own, which is stopped before the patient presses Send. The case is
sent and the patient sees it sent (no error page); its emails, written to the outbox with the
submission, wait; once Redis is back, the outbox sweep (beat's, every 30 seconds) queues them
and the worker delivers each exactly once, however often the sweep runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django_tenants.utils import schema_context

from accounts.models import User
from config.celery_app import app
from intake.models import Case
from intake.tests.test_tus_live import _sign_in
from intake.tests.test_wizard import ready_case
from outbox.models import OutboxMessage
from outbox.tasks import outbox_sweep
from tenants.models import Institution
from tests.faults.processes import FAULT_QUEUE, OwnRedis, own_redis, stop, web_server, worker_start
from tests.live import committed
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

PATIENT = "patient@neuro.example.com"
WORKER_READY = '"logger": "celery.apps.worker", "message": "%s ready."'  # its JSON log line
GRACE = "1"  # OUTBOX_SWEEP_GRACE_SECONDS: how long the sweep leaves a message to its own task


@pytest.fixture
def ready() -> Iterator[tuple[Case, int]]:
    """A draft with every step done (committed: the server is another process), and the last
    outbox message written before it."""

    def create() -> tuple[Case, int]:
        with schema_context("neuro"):
            patient = User.objects.get(email=PATIENT)
        case = ready_case(Institution.objects.get(slug="neuro"), patient)
        with schema_context("neuro"):
            last = OutboxMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        return case, last

    case, last = committed(create)
    yield case, last

    def remove() -> None:
        with schema_context("neuro"):
            OutboxMessage.objects.filter(pk__gt=last).delete()
            Case.objects.filter(pk=case.pk).delete()

    committed(remove)


def _sweep(redis: OwnRedis) -> None:
    with app.connection_for_write(redis.url) as broker:
        outbox_sweep.apply_async(queue=f"{FAULT_QUEUE}-housekeeping", connection=broker)


def _sweeps_run(log: Path) -> int:
    return len(re.findall(r"Task outbox\.sweep\[[^]]+\] succeeded", log.read_text(errors="replace")))


def _subjects(mail_dir: Path) -> list[str]:
    """The subject of every email the worker sent (Django's file backend: one file each time
    it opens a connection, the emails in it one after another)."""
    return [
        subject
        for path in sorted(mail_dir.glob("*"))
        for subject in re.findall(r"^Subject: (.*)$", path.read_text(errors="replace"), re.MULTILINE)
    ]


def test_a_case_sent_while_the_broker_is_down_is_sent_and_its_emails_arrive_once_it_is_back(
    ready: tuple[Case, int], tmp_path: Path
) -> None:
    draft, last_message = ready
    log = tmp_path / "processes.log"
    with own_redis() as redis, web_server(log=log, REDIS_URL=redis.url) as server:
        worker = worker_start(
            name="mailer",
            log=log,
            REDIS_URL=redis.url,
            SR_TEST_MAIL_DIR=str(server.mail_dir),
            OUTBOX_SWEEP_GRACE_SECONDS=GRACE,
        )
        try:
            patient = _sign_in(server, PATIENT)
            summary = patient.url(f"/cases/{draft.public_id}/summary/")
            form = requests.get(summary, headers=patient.headers, timeout=60)
            assert form.status_code == 200
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
            assert token

            wait_until(
                lambda: WORKER_READY in log.read_text(errors="replace"),
                timeout=120,
                message="the worker never started",
            )

            redis.stop()  # under the running worker and server
            sent = requests.post(
                summary,
                data={"csrfmiddlewaretoken": token.group(1)},
                headers={**patient.headers, "Referer": summary},
                allow_redirects=False,
                timeout=60,
            )
            assert sent.status_code == 302, sent.text[:2000]
            assert sent.headers["Location"] == f"/cases/{draft.public_id}/submitted/"
            page = requests.get(patient.url(sent.headers["Location"]), headers=patient.headers, timeout=60)
            assert page.status_code == 200
            with schema_context("neuro"):
                case = Case.objects.get(pk=draft.pk)
                assert case.status == Case.Status.SUBMITTED
                assert case.number and case.number in page.text
                waiting = OutboxMessage.objects.filter(pk__gt=last_message)  # the submission's
                assert waiting.exists()
                assert set(waiting.values_list("status", flat=True)) == {OutboxMessage.Status.PENDING}
            assert _subjects(server.mail_dir) == []

            redis.start()
            received = f"Your case has been received ({case.number})"

            def delivered() -> bool:
                with schema_context("neuro"):
                    if waiting.exclude(status=OutboxMessage.Status.DELIVERED).exists():
                        _sweep(redis)
                        return False
                return True

            wait_until(delivered, timeout=120, interval=2, message="the case's emails never went out")
            swept = _sweeps_run(log)
            for _ in range(3):  # more sweeps (and redelivered tasks) send nothing twice
                _sweep(redis)
            wait_until(lambda: _sweeps_run(log) >= swept + 3, timeout=60, message="the sweeps never ran")
            subjects = _subjects(server.mail_dir)
            assert subjects.count(received) == 1, subjects
            with schema_context("neuro"):
                assert len(subjects) == waiting.count()  # one email per message, each once
        finally:
            print(log.read_text(errors="replace")[-8000:])  # shown when the test fails
            stop(worker)
