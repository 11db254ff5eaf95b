"""The wire format of tus 1.0: header names, limits, and parsing of the headers we accept.

Parsing refuses anything malformed with a :class:`TusError` carrying the status and one of the
messages in :mod:`intake.tus.messages`; nothing here touches the database or storage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Protocol

from intake.tus import messages

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

# The checksum extension's algorithms (names as tus clients send them).
CHECKSUM_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1,
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha256": hashlib.sha256,
}

HTTP_CHECKSUM_MISMATCH = 460  # tus checksum extension: "Checksum Mismatch"
HTTP_LOCKED = 423
# Our storage could not take the bytes (full, or unreachable): a server error, so tus clients
# retry it after a delay, resuming from the offset we still report.
HTTP_INSUFFICIENT_STORAGE = 507

METADATA_MAX_LENGTH = 8 * 1024
FILENAME_MAX_LENGTH = 255
PATH_MAX_LENGTH = 1000
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_DIGITS = re.compile(r"^[0-9]{1,19}\Z")
_BATCH_FILES = re.compile(r"^[1-9][0-9]{0,4}\Z")


class TusError(Exception):
    """A request we refuse: answered with ``status`` and ``message`` as plain text."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Body:
    """A request body to read in pieces; ``length`` is None for chunked transfer encoding."""

    stream: Readable
    length: int | None


@dataclass(frozen=True)
class Checksum:
    """The ``Upload-Checksum`` of one chunk."""

    algorithm: str
    digest: bytes

    def hasher(self) -> Any:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


@dataclass(frozen=True)
class UploadDescription:
    """What the client said about a new upload in ``Upload-Metadata`` (validated)."""

    case_public_id: str
    kind: str
    filename: str
    relative_path: str
    report_kind: str
    sha256: str
    # A batch the browser packed (an uncompressed zip of many files of a folder): how many.
    batch_files: int = 0


def parse_length(value: str | None) -> int:
    if value is None or value == "":
        raise TusError(400, messages.LENGTH_MISSING)
    if not _DIGITS.match(value):
        raise TusError(400, messages.LENGTH_INVALID)
    return int(value)


def parse_offset(value: str | None) -> int:
    if value is None or not _DIGITS.match(value):
        raise TusError(400, messages.OFFSET_MISSING)
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Decode ``key base64,key2 base64`` pairs (a key may come without a value)."""
    if not value:
        return {}
    if len(value) > METADATA_MAX_LENGTH:
        raise TusError(400, messages.METADATA_INVALID)
    pairs: dict[str, str] = {}
    for item in value.split(","):
        parts = item.strip().split(" ")
        if not parts[0] or len(parts) > 2 or parts[0] in pairs:
            raise TusError(400, messages.METADATA_INVALID)
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(400, messages.METADATA_INVALID) from None
        pairs[parts[0]] = decoded
    return pairs


def encode_metadata(pairs: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}" for key, value in pairs.items()
    )


def _clean_text(value: str, max_length: int, message: str) -> str:
    """Refuse control characters (they could forge log lines or confuse the UI) and overlong text."""
    if len(value) > max_length or any(unicodedata.category(char).startswith("C") for char in value):
        raise TusError(400, message)
    return value


def describe_upload(metadata: dict[str, str], *, report_kinds: set[str]) -> UploadDescription:
    """Validate the metadata of a new upload (see the contract in ``intake.tus``'s views)."""
    case_public_id = metadata.get("case", "").strip()
    if not case_public_id:
        raise TusError(400, messages.CASE_MISSING)
    kind = metadata.get("kind", "imaging") or "imaging"
    if kind not in ("imaging", "report"):
        raise TusError(400, messages.KIND_INVALID)
    filename = _clean_text(metadata.get("filename", ""), FILENAME_MAX_LENGTH, messages.FILENAME_INVALID)
    relative_path = _clean_text(metadata.get("relativePath", ""), PATH_MAX_LENGTH, messages.PATH_INVALID)
    report_kind = ""
    if kind == "report":
        report_kind = metadata.get("reportKind", "") or "other"
        if report_kind not in report_kinds:
            raise TusError(400, messages.REPORT_KIND_INVALID)
    sha256 = metadata.get("sha256", "").strip().lower()
    if sha256 and not _SHA256.match(sha256):
        raise TusError(400, messages.SHA256_INVALID)
    batch_files = metadata.get("batchFiles", "")
    if batch_files and (kind != "imaging" or not _BATCH_FILES.match(batch_files)):
        raise TusError(400, messages.BATCH_FILES_INVALID)
    return UploadDescription(
        case_public_id=case_public_id,
        kind=kind,
        filename=filename,
        relative_path=relative_path or filename,
        report_kind=report_kind,
        sha256=sha256,
        batch_files=int(batch_files or 0),
    )


def parse_checksum(value: str | None) -> Checksum | None:
    if not value:
        return None
    parts = value.strip().split(" ")
    if len(parts) != 2:
        raise TusError(400, messages.CHECKSUM_INVALID)
    algorithm = parts[0].lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusError(400, messages.CHECKSUM_ALGORITHM_UNSUPPORTED)
    try:
        digest = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise TusError(400, messages.CHECKSUM_INVALID) from None
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise TusError(400, messages.CHECKSUM_INVALID)
    return Checksum(algorithm=algorithm, digest=digest)


def http_date(moment: datetime) -> str:
    """RFC 9110 date, as the expiration extension's ``Upload-Expires`` wants it."""
    return format_datetime(moment, usegmt=True)


def human_size(size: int) -> str:
    """Sizes as computers show them to patients: "4.0 GB" (binary units, as Windows counts)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB"):
        if value < 1024:
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
