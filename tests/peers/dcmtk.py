"""dcmtk (Debian package ``dcmtk``) as a peer: ``storescp`` receiving on a free loopback port
into a temporary folder, and ``storescu`` sending files, for the DIMSE tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.live import free_port
from tests.waiting import wait_until

STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"


@dataclass(frozen=True)
class StoreScp:
    port: int
    aet: str
    folder: Path

    def received(self) -> list[Path]:
        return sorted(path for path in self.folder.iterdir() if path.is_file())


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def storescp_running(*, aet: str = "STORESCP", accept_all: bool = False) -> Iterator[StoreScp]:
    """A storescp; by default it accepts uncompressed transfer syntaxes only (dcmtk's default),
    ``accept_all`` (+xa) takes compressed ones too."""
    folder = Path(tempfile.mkdtemp(prefix="secondread-storescp-"))
    peer = StoreScp(free_port(), aet, folder)
    # +B: the files hold the data set exactly as it arrived (not re-encoded by dcmtk).
    args = [STORESCP, "-aet", aet, "+B", "--output-directory", str(folder), "--filename-extension", ".dcm"]
    if accept_all:
        args.append("+xa")
    process = subprocess.Popen([*args, str(peer.port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(
            lambda: process.poll() is not None or _listening(peer.port),
            timeout=20,
            message="storescp did not start listening",
        )
        if process.poll() is not None:
            raise RuntimeError(f"storescp exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        yield peer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def storescu(
    *, port: int, called_ae: str, files: list[Path], calling_ae: str = "STORESCU"
) -> subprocess.CompletedProcess[str]:
    """Send ``files`` with storescu (dcmtk proposes the uncompressed syntaxes); its output
    and exit status are returned for the test to look at."""
    return subprocess.run(
        [STORESCU, "-aet", calling_ae, "-aec", called_ae, "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
