"""gunicorn's access log, as shipped, has no query strings (reset keys, invitation and file
tokens travel there)."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.live import BASE_DIR, BIN, _wait_for_http, child_env, free_port, process_stop

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_it_logs_paths_without_query_strings(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "access.log"
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--config",
            "deploy/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(log),
        ],
        cwd=BASE_DIR,
        env=child_env(),
    )
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/healthz", "localhost", process)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/accounts/password/reset/key/abc-set-password/?key=SECRET-RESET-KEY",
            headers={"Host": "neuro.localhost", "Referer": "http://x/?token=SECRET-REFERER"},
        )
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=60).read()
        deadline = time.monotonic() + 10
        while "password/reset" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process_stop(process)
    text = log.read_text()
    assert "/accounts/password/reset/key/abc-set-password/" in text
    assert "SECRET" not in text


def test_the_container_uses_the_shared_gunicorn_settings() -> None:
    entry = (BASE_DIR / "deploy" / "secondread.sh").read_text()
    assert "-c deploy/gunicorn.conf.py" in entry
