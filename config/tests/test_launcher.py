"""``./sr run``'s supervision: a process that dies is started again (the rest of the stack stays
up), one that keeps dying stops everything, and the port check does not mistake a killed
server's leftover connections for a server still listening."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from config import launcher
from tests.live import free_port
from tests.waiting import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_it_starts_a_killed_process_again_and_leaves_the_others_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(launcher, "RESTART_DELAYS", (0.1,))
    worker = launcher.Supervised("worker", SLEEPER)
    web = launcher.Supervised("web server", SLEEPER)
    try:
        killed = worker.process.pid
        os.kill(killed, signal.SIGKILL)

        def restarted() -> bool:
            now = time.monotonic()
            assert worker.check(now) and web.check(now)
            return worker.process.pid != killed and worker.process.poll() is None

        wait_until(restarted, timeout=20, message="the killed worker was not started again")
        assert web.process.poll() is None and web.restarts == []
    finally:
        launcher._stop([worker.process, web.process])


def test_it_gives_up_on_a_process_that_keeps_dying(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "RESTART_DELAYS", (0.0,))
    monkeypatch.setattr(launcher, "RESTARTS_BEFORE_GIVING_UP", 3)
    crasher = launcher.Supervised("beat", [sys.executable, "-c", "raise SystemExit(3)"])
    results: list[bool] = []

    def gave_up() -> bool:
        results.append(crasher.check(time.monotonic()))
        return not results[-1]

    wait_until(gave_up, timeout=30, message="a process that keeps dying was restarted forever")
    assert len(crasher.restarts) == 3


def test_the_port_is_free_again_as_soon_as_a_killed_server_is_gone() -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys, time\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('127.0.0.1', {port})); s.listen()\n"
            "print('ready', flush=True)\n"
            "c, _ = s.accept(); c.sendall(b'hello'); time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        assert not launcher._port_free(port)  # listening
        client = socket.create_connection(("127.0.0.1", port))
        assert client.recv(5) == b"hello"
        server.kill()  # the server's side of the connection is closed first: TIME_WAIT
        server.wait()
        client.close()
        # Without SO_REUSEADDR this bind failed for a minute after a killed `./sr run`.
        assert launcher._port_free(port)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_quick_loop_runs_the_quick_tests_on_every_core_without_checks_or_coverage() -> None:
    checks_first, pytest_args = launcher.tests_arguments(["--quick", "imaging", "-k", "frames"])
    assert not checks_first
    assert pytest_args == ["--no-cov", "-m", "not slow", "-n", "auto", "imaging", "-k", "frames"]
    # The full run: the checks first, and the coverage of every app.
    checks_first, pytest_args = launcher.tests_arguments(["-k", "tenancy"])
    assert checks_first
    assert "--cov=imaging" in pytest_args and pytest_args[-2:] == ["-k", "tenancy"]
    assert launcher.tests_arguments(["--no-checks", "--no-cov"]) == (False, ["--no-cov"])


def test_tests_get_their_settings_and_keep_their_bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.base")
    env = launcher.tests_environment()
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.test"
    assert "PYTHONDONTWRITEBYTECODE" not in env
