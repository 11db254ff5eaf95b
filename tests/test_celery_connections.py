"""A worker keeps its database connection from one task to the next (Celery's Django fix-up
closed it around every task, and each task paid for two new PostgreSQL backends), and still
recovers when the connection it kept is gone."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import psutil
import pytest
from django.conf import settings
from django.db import connection

from intake.tus.tasks import uploads_expire
from tenants.models import Institution
from tenants.schema import activate_institution, activate_public
from tests.live import committed

pytestmark = pytest.mark.worker


def _task_run(slug: str = "neuro") -> None:
    activate_institution(Institution.objects.get(slug=slug))
    try:
        uploads_expire.delay().get(timeout=30)
    finally:
        activate_public()
    time.sleep(1)  # the result is stored before the task's postrun handlers run


def _database_connections(worker: subprocess.Popen[Any]) -> set[int]:
    """The local ports of the worker's connections to PostgreSQL."""
    port = int(settings.DATABASES["default"].get("PORT") or 5432)
    return {
        link.laddr.port
        for link in psutil.Process(worker.pid).net_connections(kind="tcp")
        if link.raddr and link.raddr.port == port and link.status == psutil.CONN_ESTABLISHED
    }


def _backends_end(ports: set[int]) -> None:
    """End the server side of these connections, as a restart of PostgreSQL would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(%s)",
            [sorted(ports)],
        )


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
