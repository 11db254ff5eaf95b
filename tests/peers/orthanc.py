"""A real Orthanc (Debian packages ``orthanc`` + ``orthanc-dicomweb``) for peer tests: started
from a JSON config on free loopback ports, with its own empty storage, stopped afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.live import free_port

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


class Orthanc:
    def __init__(self, http_port: int, dicom_port: int, aet: str) -> None:
        self.http_port = http_port
        self.dicom_port = dicom_port
        self.aet = aet

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url(path), timeout=60) as response:
            return json.loads(response.read())

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            self.url(path), data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode()[:2000]
            raise AssertionError(f"Orthanc answered {error.code} to {path}: {detail}") from None
        return json.loads(raw) if raw else None


@contextmanager
def orthanc_running(
    *, dicomweb_servers: dict[str, Any] | None = None, aet: str = "ORTHANC"
) -> Iterator[Orthanc]:
    """An Orthanc with the DICOMweb plugin; ``dicomweb_servers`` is its DicomWeb.Servers setting
    (remote DICOMweb servers it may query, retrieve from and store to)."""
    folder = Path(tempfile.mkdtemp(prefix="secondread-orthanc-"))
    orthanc = Orthanc(free_port(), free_port(), aet)
    config = {
        "Name": "SecondRead peer test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": orthanc.http_port,
        "DicomPort": orthanc.dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpTimeout": 60,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": dicomweb_servers or {}},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [ORTHANC, str(folder / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                raise RuntimeError(f"Orthanc exited during start-up: {output}")
            try:
                orthanc.get("/system")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise RuntimeError("Orthanc did not answer in time") from None
                time.sleep(0.2)
        yield orthanc
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
