"""STOW-RS as a client (PS3.18 §10.5): instances POSTed to ``<service root>/studies`` as
``multipart/related; type="application/dicom"``, a batch per request.

Each part carries an instance's stored bytes unchanged. The answer's Failed SOP Sequence names
the instances the server refused; any refusal fails the attempt (the whole batch is sent again
on retry: STOW-RS servers take a re-sent instance as the same one).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from imaging.pacs.dimse import PacsError

# Parts per request are bounded by size so a request never holds a whole study in memory.
BATCH_BYTES = 64 * 1024 * 1024
TIMEOUT = (10, 300)  # connect, read (a large batch takes a while to store)

NOT_REACHED = "The PACS's DICOMweb address could not be reached."
AUTH_REFUSED = "The PACS refused our credentials (HTTP {status}): check the user name, password or token."
HTTP_REFUSED = "The PACS answered HTTP {status} to the images."
INSTANCES_REFUSED = "The PACS refused {count} image(s) (reason 0x{reason:04X})."

FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"


@dataclass(frozen=True)
class StowEndpoint:
    url: str  # the DICOMweb service root, e.g. https://pacs.example.org/dicom-web
    auth: str = "none"  # "none", "basic" or "bearer"
    username: str = ""
    secret: str = ""

    def studies_url(self) -> str:
        return self.url.rstrip("/") + "/studies"

    def headers(self) -> dict[str, str]:
        if self.auth == "bearer" and self.secret:
            return {"Authorization": f"Bearer {self.secret}"}
        return {}

    def basic(self) -> tuple[str, str] | None:
        return (self.username, self.secret) if self.auth == "basic" else None


def _batches(paths: list[Path]) -> Iterator[list[Path]]:
    batch: list[Path] = []
    size = 0
    for path in paths:
        length = path.stat().st_size
        if batch and size + length > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        yield batch


class _MultipartBody:
    """The multipart body as a file-like object of known length, read file by file: requests
    sends it with a Content-Length (some servers take no chunked request bodies) and memory
    holds one read at a time."""

    def __init__(self, paths: list[Path], boundary: str) -> None:
        self._pieces: list[bytes | Path] = []
        for path in paths:
            self._pieces += [
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                path,
                b"\r\n",
            ]
        self._pieces.append(f"--{boundary}--\r\n".encode())
        self._length = sum(len(p) if isinstance(p, bytes) else p.stat().st_size for p in self._pieces)
        self._chunks = self._iterate()
        self._current = b""
        self._position = 0

    def __len__(self) -> int:
        return self._length

    def _iterate(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            with piece.open("rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    yield chunk

    def read(self, size: int = -1) -> bytes:
        # One chunk (at most 1 MiB) is held, with a position in it: no re-copying per read.
        out = bytearray()
        while size < 0 or len(out) < size:
            if self._position >= len(self._current):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._current, self._position = chunk, 0
            want = len(self._current) - self._position if size < 0 else size - len(out)
            out += self._current[self._position : self._position + want]
            self._position += want
        return bytes(out)


def stow_files(endpoint: StowEndpoint, paths: list[Path]) -> int:
    """POST the files in batches; returns how many were stored. Raises PacsError."""
    stored = 0
    with requests.Session() as session:
        for batch in _batches(paths):
            boundary = secrets.token_hex(16)
            headers = {
                **endpoint.headers(),
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            }
            try:
                response = session.post(
                    endpoint.studies_url(),
                    data=_MultipartBody(batch, boundary),
                    headers=headers,
                    auth=endpoint.basic(),
                    timeout=TIMEOUT,
                )
            except requests.RequestException:
                raise PacsError(NOT_REACHED) from None
            if response.status_code in (401, 403):
                raise PacsError(AUTH_REFUSED.format(status=response.status_code), retry=False)
            failed = _failed_reasons(response)
            if failed:
                raise PacsError(INSTANCES_REFUSED.format(count=len(failed), reason=failed[0]))
            if response.status_code not in (200, 202):
                retry = response.status_code >= 500 or response.status_code in (408, 429)
                raise PacsError(HTTP_REFUSED.format(status=response.status_code), retry=retry)
            stored += len(batch)
    return stored


def _failed_reasons(response: requests.Response) -> list[int]:
    """The Failure Reason of each instance in the answer's Failed SOP Sequence (JSON answers)."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return []
    if isinstance(body, list):
        body = body[0] if body else {}
    if not isinstance(body, dict):
        return []
    items = body.get(FAILED_SOP_SEQUENCE, {}).get("Value", [])
    reasons = []
    for item in items:
        value = item.get(FAILURE_REASON, {}).get("Value", [0xC000]) if isinstance(item, dict) else [0xC000]
        reasons.append(int(value[0]) if value else 0xC000)
    return reasons
