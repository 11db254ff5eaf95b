"""Fixtures for cross-app tests: a live SecondRead server and a real Celery worker, each a
separate process on the session's test database, and a real Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from config.launcher import GUNICORN_SETTINGS

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def child_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created (for child processes)."""
    db = settings.DATABASES["default"]
    host = db.get("HOST") or ""
    auth = quote(db.get("USER") or "postgres") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    if host.startswith("/"):
        return f"postgresql://{auth}@/{db['NAME']}?host={quote(host)}"
    return f"postgresql://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


WORKER_APPLICATION_NAME = "secondread-test-worker"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a server or worker a test starts: the test settings on the test
    database, unless ``extra`` says otherwise (a fault test's own PostgreSQL, say)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=child_database_url(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gunicorn_command(port: int, *, access_log: str = os.devnull, niceness: int = 0) -> list[str]:
    """gunicorn serving the app on loopback ``port`` as ./sr run starts it (config/launcher.py:
    2 workers x 8 threads) with its access log format; ``niceness`` as
    ``deploy/secondread.sh uploads`` runs it (10). For benchmarks, which start their own."""
    return [
        *(["nice", "-n", str(niceness)] if niceness else []),
        str(BIN / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        *GUNICORN_SETTINGS,
        "--access-logfile",
        access_log,
        "--log-level",
        "warning",
    ]


def benchmark_run_remove(old_name: str, workdir: Path) -> None:
    """Undo a benchmark's throw-away run (its database made by ``create_test_db``, returning
    ``old_name``): the uploads it stored, its files, its database and its Celery queue."""
    from django_tenants.utils import schema_context

    from storage.tenant import tenant_storage

    with schema_context("neuro"):
        tenant_storage().delete_prefix("uploads")
    shutil.rmtree(settings.STORAGE_FILESYSTEM_ROOT, ignore_errors=True)
    connection.creation.destroy_test_db(old_name, verbosity=0)
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception as error:  # the numbers matter more than tidying the queue
        print(f"could not delete the Celery queue: {type(error).__name__}")


def _wait_for_http(url: str, host: str, process: subprocess.Popen[Any], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the live server exited during start-up")
        try:
            request = urllib.request.Request(url, headers={"Host": host})
            with urllib.request.urlopen(request, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the live server did not answer in time")


class LiveServer:
    def __init__(self, port: int, mail_dir: Path) -> None:
        self.port = port
        # Emails the live server sends land here, one file per email (Django's file backend).
        self.mail_dir = mail_dir

    def url(self, slug: str | None = None, path: str = "/") -> str:
        host = f"{slug}.{settings.PLATFORM_DOMAIN}" if slug else settings.PLATFORM_DOMAIN
        return f"http://{host}:{self.port}{path}"


def process_stop(process: subprocess.Popen[Any], *, grace: float = 30) -> None:
    """Stop a server the test started: SIGTERM, and SIGKILL if it has not gone after ``grace``
    seconds (a busy machine: gunicorn finishing its requests)."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def test_mail_dir() -> Iterator[Path]:
    """Where the live server and the worker write their emails (one folder for both, so a test
    finds an email whichever process sent it)."""
    mail_dir = Path(tempfile.mkdtemp(prefix="secondread-mail-"))
    yield mail_dir
    shutil.rmtree(mail_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def live_platform(
    django_db_setup: None, test_mail_dir: Path, celery_worker_process: subprocess.Popen[Any]
) -> Iterator[LiveServer]:
    """SecondRead served by gunicorn (as in production) on the test database, with a worker:
    the server writes its emails to the outbox and the worker sends them (outbox.mail)."""
    port = free_port()
    mail_dir = test_mail_dir
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
        ],
        cwd=BASE_DIR,
        env=child_env(PLATFORM_PORT=str(port), SR_TEST_MAIL_DIR=str(mail_dir)),
    )
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/healthz", settings.PLATFORM_DOMAIN, process)
        yield LiveServer(port, mail_dir)
    finally:
        process_stop(process)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None, test_mail_dir: Path) -> Iterator[subprocess.Popen[Any]]:
    """A real Celery worker on the real broker, consuming the tests' own queue."""
    process = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--queues",
            f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.CELERY_HOUSEKEEPING_QUEUE}",
            "--hostname",
            f"test-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=BASE_DIR,
        # Its connections are named (libpq's PGAPPNAME), for tests that look at them.
        env=child_env(SR_TEST_MAIL_DIR=str(test_mail_dir), PGAPPNAME=WORKER_APPLICATION_NAME),
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


T = TypeVar("T")


def committed(work: Callable[[], T]) -> T:
    """Run ``work`` on a database connection of its own (a thread's), committed as it goes:
    the workers and servers are other processes, and the test's own connection is inside the
    test's transaction (whose row locks they would wait on forever)."""
    results: list[T] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]
    return results[0]
