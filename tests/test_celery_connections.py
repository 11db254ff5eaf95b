"""A worker keeps its database connection from one task to the next (Celery's Django fix-up
closed it around every task, and each task paid for two new PostgreSQL backends), and still
recovers when the connection it kept is gone."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from django.db import connection

from intake.tus.tasks import uploads_expire
from tenants.models import Institution
from tenants.schema import activate_institution, activate_public
from tests.live import WORKER_APPLICATION_NAME, committed

pytestmark = pytest.mark.worker


def _task_run(slug: str = "neuro") -> None:
    activate_institution(Institution.objects.get(slug=slug))
    try:
        uploads_expire.delay().get(timeout=30)
    finally:
        activate_public()
    time.sleep(1)  # the result is stored before the task's postrun handlers run


def _database_connections(worker: subprocess.Popen[Any]) -> set[int]:
    """The backend pids of the worker's connections (named by the fixture, libpq's PGAPPNAME).
    By name, not by client port: the embedded PostgreSQL ./sr starts where none runs listens on
    a Unix socket only; and not every other client of the database, which ended connections of
    the test process itself (a later test failed on one)."""
    assert worker.poll() is None, "the worker exited"
    with connection.cursor() as cursor:
        # The activity view is a snapshot per transaction, and the test runs in one: a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [WORKER_APPLICATION_NAME],
        )
        return {pid for (pid,) in cursor.fetchall()}


def _backends_end(pids: set[int]) -> None:
    """End the server side of these connections, as a restart of PostgreSQL would."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [sorted(pids)])


def test_a_worker_keeps_its_database_connection_from_task_to_task(
    celery_worker_process: subprocess.Popen[Any],
) -> None:
    _task_run()
    kept = _database_connections(celery_worker_process)
    assert kept, "the connection was closed after the task"
    _task_run("cancer")  # another institution's task: the same connection, its own schema
    assert _database_connections(celery_worker_process) == kept


def test_a_worker_whose_kept_connection_died_reconnects_for_the_next_task(
    celery_worker_process: subprocess.Popen[Any],
) -> None:
    _task_run()
    kept = _database_connections(celery_worker_process)
    committed(lambda: _backends_end(kept))
    _task_run()  # health-checked before its first query: a new connection, no failure
    assert _database_connections(celery_worker_process) - kept
