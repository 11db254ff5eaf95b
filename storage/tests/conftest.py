"""Fixtures shared by storage's tests: both backends, a moto S3 server, generated streams."""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from storage.backends import reset_backend
from storage.base import StorageBackend
from storage.filesystem import FilesystemBackend
from storage.s3 import S3Backend

# moto runs in a child process, not in a thread of the test process: it keeps every object in
# memory, and tracemalloc would count that against the bounded-memory tests of the S3 client.
# The child binds port 0, prints the port it got, and exits when its stdin is closed.
_MOTO_CHILD = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``host:port`` of a moto S3 server shared by the whole session."""
    child = subprocess.Popen(
        [sys.executable, "-c", _MOTO_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    port = int(child.stdout.readline())
    yield f"127.0.0.1:{port}"
    child.stdin.close()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def make_s3_backend(endpoint: str) -> S3Backend:
    """An S3 backend on a fresh bucket, so tests never see each other's objects."""
    return S3Backend(
        endpoint=endpoint,
        access_key="testing",
        secret_key="testing",
        bucket=f"test-{uuid.uuid4().hex[:12]}",
        secure=False,
        region="us-east-1",
    )


@pytest.fixture
def filesystem_backend(tmp_path: Path) -> FilesystemBackend:
    return FilesystemBackend(tmp_path / "files")


@pytest.fixture
def s3_backend(moto_endpoint: str) -> S3Backend:
    return make_s3_backend(moto_endpoint)


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest) -> StorageBackend:
    """Each behaviour test runs once per backend: they must behave the same."""
    return cast(StorageBackend, request.getfixturevalue(f"{request.param}_backend"))


@pytest.fixture(autouse=True)
def _fresh_backend_cache() -> Iterator[None]:
    reset_backend()
    yield
    reset_backend()
