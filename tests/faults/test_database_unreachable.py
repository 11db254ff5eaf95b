"""A database that does not answer (a failover in progress, a network partition: the address
takes the connection and nothing comes back) must not hold the people who use the app: a real
server (gunicorn) whose PostgreSQL is such a silent listener answers a patient's request within
its connect timeout, not after the operating system gives up (minutes) or never: 503 with
Retry-After and a "briefly unavailable" page (JSON for a tus client), so browsers and clients
know to try again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.faults.processes import web_server
from tests.live import free_port

pytestmark = [pytest.mark.slow]


@pytest.fixture
def silent_database() -> Iterator[str]:
    """The URL of a "PostgreSQL" that takes connections (the kernel completes the handshake)
    and never says a word."""
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(64)  # never accepted: no reply ever comes
        yield f"postgresql://postgres@127.0.0.1:{port}/secondread"


def test_a_silent_database_fails_a_request_within_seconds_instead_of_holding_it(
    silent_database: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    with web_server(log=log, DATABASE_URL=silent_database, DB_CONNECT_TIMEOUT="2") as server:
        # Far longer than the connect timeout, far shorter than the operating system's own.
        answer = requests.get(
            f"http://127.0.0.1:{server.port}/", headers={"Host": "neuro.localhost"}, timeout=45
        )
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "30"
        assert "We are briefly unavailable" in answer.text
        assert "Nothing you entered has been lost" in answer.text
        # An upload client (tus) gets JSON it can show, and retries by itself.
        upload = requests.patch(
            f"http://127.0.0.1:{server.port}/intake/tus/0b6a0c8e-0000-4000-8000-000000000000",
            headers={"Host": "neuro.localhost", "Tus-Resumable": "1.0.0", "Upload-Offset": "0"},
            timeout=45,
        )
        assert upload.status_code == 503 and upload.headers["Retry-After"] == "30"
        assert "briefly unavailable" in upload.json()["error"]
