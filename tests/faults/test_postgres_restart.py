"""PostgreSQL restarted under load: a PostgreSQL of our own (the shared server and the test's
database are never touched) holding a copy of the test database, a real server (gunicorn, eight
threads) and a worker on it, a folder drop being ingested and a patient's page polling when the
database goes away (immediate shutdown: every connection cut, as a crash or a failover would)
and comes back. Without a restart of its own, every server thread answers again (no connection
left dead: health checks), the worker goes on, every file is ingested exactly once and nothing
is left stuck."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from django_tenants.utils import schema_context

from config.celery_app import app
from imaging.tasks import upload_ingest, uploads_ingest_resume_all
from intake.models import Case
from intake.tests.test_tus_live import Patient, _sign_in
from tests.faults.processes import (
    FAULT_QUEUE,
    OwnRedis,
    own_postgres,
    own_redis,
    stop,
    web_server,
    worker_start,
)
from tests.faults.uploads import folder_drop_make, folder_drop_remove
from tests.live import child_database_url
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FILES = 60
THREADS = 8  # the server's (tests.faults.processes.web_server)


@pytest.fixture
def folder_drop() -> Iterator[tuple[Case, list[int]]]:
    """Made in the test database before it is copied (its files are shared: one storage)."""
    case, ids = folder_drop_make(FILES)
    yield case, ids
    folder_drop_remove(case)


def _publish(redis: OwnRedis, task: object, *args: object, queue: str = FAULT_QUEUE) -> None:
    with app.connection_for_write(redis.url) as broker:
        task.apply_async(args, queue=queue, connection=broker)  # type: ignore[attr-defined]


class Database:
    """Reads of our own PostgreSQL's copy (the test's connection is on the test database)."""

    def __init__(self, url: str, case: Case) -> None:
        self.url = url
        self.case_id = case.pk

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        try:
            with psycopg.connect(self.url, connect_timeout=5) as connection:
                return connection.execute(sql, {"case": self.case_id}).fetchall()
        except psycopg.OperationalError:
            return []  # down: nothing to read yet

    def upload_statuses(self) -> dict[str, int]:
        sql = "SELECT status, count(*) FROM neuro.imaging_upload WHERE case_id = %(case)s GROUP BY status"
        return {str(status): int(str(count)) for status, count in self.rows(sql)}

    def instances_per_upload(self) -> dict[int, int]:
        sql = (
            "SELECT i.upload_id, count(*) FROM neuro.imaging_instance i "
            "JOIN neuro.imaging_series s ON s.id = i.series_id "
            "JOIN neuro.imaging_study st ON st.id = s.study_id "
            "WHERE st.case_id = %(case)s GROUP BY i.upload_id"
        )
        return {int(str(upload)): int(str(count)) for upload, count in self.rows(sql)}

    def problems(self) -> int:
        files = self.rows("SELECT count(*) FROM neuro.imaging_fileproblem WHERE case_id = %(case)s")
        system = self.rows(
            "SELECT count(*) FROM neuro.imaging_upload WHERE case_id = %(case)s AND system_problem <> ''"
        )
        return int(str(files[0][0])) + int(str(system[0][0]))


class Polling:
    """A patient's page polling the case's file status (as the browser does during an
    ingest), from a thread, until stopped: the answers' status codes, in order."""

    def __init__(self, patient: Patient, url: str) -> None:
        self.patient, self.url = patient, url
        self.codes: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def get(self) -> int:
        try:
            return requests.get(self.url, headers=self.patient.headers, timeout=30).status_code
        except requests.RequestException:
            return 0

    def _run(self) -> None:
        while not self.stopped.wait(0.05):
            self.codes.append(self.get())

    def __enter__(self) -> Polling:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


def test_the_app_and_worker_recover_from_a_postgres_restart_and_ingest_every_file_once(
    folder_drop: tuple[Case, list[int]], tmp_path: Path
) -> None:
    case, upload_ids = folder_drop
    log = tmp_path / "processes.log"
    with own_postgres() as postgres, own_redis() as redis:
        database_url = postgres.database_copy(source=child_database_url())
        database = Database(database_url, case)
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis.url}
        with web_server(log=log, **env) as server:
            worker = worker_start(
                name="steady", log=log, INGEST_STALE_SECONDS="6", INGEST_HEARTBEAT_SECONDS="1", **env
            )
            try:
                patient = _sign_in(server, "patient@neuro.example.com")
                polling = Polling(patient, patient.url(f"/cases/{case.public_id}/images/status.json"))
                assert polling.get() == 200
                with schema_context("neuro"):  # the tasks carry the institution's schema
                    for upload_id in upload_ids:
                        _publish(redis, upload_ingest, upload_id)
                wait_until(
                    lambda: database.upload_statuses().get("done"),
                    timeout=120,
                    interval=0.05,
                    message="the ingest never got going",
                )

                with polling:
                    postgres.stop()  # mid-ingest, requests in flight
                    wait_until(
                        lambda: polling.codes[-1:] not in ([], [200]),
                        timeout=60,
                        message="the server went on answering 200 without its database",
                    )
                    postgres.start()
                    wait_until(
                        lambda: polling.codes[-1:] == [200],
                        timeout=60,
                        message="the server never answered again",
                    )
                # Every server thread answers (none kept a dead connection): rounds of as many
                # requests at once as the server has threads.
                with ThreadPoolExecutor(THREADS) as pool:
                    for _ in range(3):
                        assert list(pool.map(lambda _: polling.get(), range(THREADS))) == [200] * THREADS

                # Uploads whose ingest died with the connection are taken up again by the sweep
                # (beat's, every two minutes), once they have waited past the stale window.
                def swept_and_done() -> bool:
                    if database.upload_statuses() == {"done": FILES}:
                        return True
                    _publish(redis, uploads_ingest_resume_all, queue=f"{FAULT_QUEUE}-housekeeping")
                    return False

                wait_until(swept_and_done, timeout=180, interval=3, message="uploads left un-ingested")
                assert database.instances_per_upload() == dict.fromkeys(upload_ids, 1)  # each file once
                assert database.problems() == 0  # no file blamed for our outage
                assert worker.poll() is None
            finally:
                print(log.read_text(errors="replace")[-8000:])  # shown when the test fails
                stop(worker)
