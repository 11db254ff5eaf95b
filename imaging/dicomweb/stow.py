"""STOW-RS (PS3.18 §10.5): a machine client stores instances into a case.

The body (``multipart/related; type="application/dicom"``) is read part by part into temporary
files, never whole into memory. Each part is checked on its own: a DICOM Part 10 file, with its
SOP Class, SOP Instance and Study Instance UIDs (and the study of the URL, when one is named).
Good parts become uploads of the case, exactly as a patient's files do, and go through the same
ingest pipeline and defences (imaging.ingest) before the answer is written, so the answer says
truthfully which instances are stored (Referenced SOP Sequence) and why each other one is not
(Failed SOP Sequence, with a Failure Reason code, and the reason in words in a Warning header).
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.db import transaction
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from imaging.ingest.pipeline import upload_ingest_run
from imaging.models import FileProblem, Instance, IntegrationCredential, Upload
from storage.tenant import tenant_storage

READ_CHUNK = 256 * 1024
MAX_HEADER_BYTES = 16 * 1024
# A STOW request is one study or a few; bigger sets are sent in several requests.
MAX_BODY_BYTES = 4 * 1024**3
MAX_PARTS = 5000

# Failure Reason (0008,1197) codes (PS3.4 Annex GG / PS3.18 Table 10.5.3-2).
PROCESSING_FAILURE = 0x0110
CANNOT_UNDERSTAND = 0xC000
DOES_NOT_MATCH = 0xA900

NOT_MULTIPART = 'Send instances as multipart/related; type="application/dicom" (PS3.18 STOW-RS).'
BAD_BODY = "The multipart body is malformed (boundary not found, or cut short)."
TOO_LARGE = "The request is too large: send the instances in several requests."
NO_PARTS = "The request holds no instances."
PART_NOT_DICOM = "This part is not application/dicom."
PART_UNREADABLE = "This part is not a readable DICOM file."
PART_NO_UIDS = "This instance has no SOP Class, SOP Instance or Study Instance UID."
PART_OTHER_STUDY = "This instance belongs to another study than the one in the address."
PART_NOT_STORED = "This instance could not be stored."


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class StowRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class PartOutcome:
    sop_class: str = ""
    sop_instance: str = ""
    upload: Upload | None = None
    failure: int = 0
    message: str = ""


@dataclass
class StowResult:
    parts: list[PartOutcome] = field(default_factory=list)

    @property
    def stored(self) -> list[PartOutcome]:
        return [part for part in self.parts if not part.failure]

    @property
    def failed(self) -> list[PartOutcome]:
        return [part for part in self.parts if part.failure]


def boundary_of(content_type: str) -> str:
    """The boundary of a STOW body's Content-Type; StowRefused(415) if it is not one."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/related":
        raise StowRefused(415, NOT_MULTIPART)
    values = {}
    for match in re.finditer(r'([A-Za-z-]+)\s*=\s*("([^"]*)"|[^;\s]+)', params):
        values[match.group(1).lower()] = match.group(3) if match.group(3) is not None else match.group(2)
    part_type = values.get("type", "application/dicom").lower()
    boundary = values.get("boundary", "")
    # RFC 2046 says at most 70 characters; Orthanc sends 73, so some slack.
    if part_type != "application/dicom" or not boundary or len(boundary) > 200:
        raise StowRefused(415, NOT_MULTIPART)
    return boundary


def multipart_parts(stream: Readable, boundary: str, folder: Path) -> Iterator[tuple[str, Path]]:
    """Each part's Content-Type and a file holding its bytes (streamed; bounded memory)."""
    delimiter = b"\r\n--" + boundary.encode("ascii")
    buffer = b"\r\n"  # the first delimiter has no CRLF before it
    total = 0

    def more() -> bool:
        nonlocal buffer, total
        chunk = stream.read(READ_CHUNK)
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise StowRefused(413, TOO_LARGE)
        buffer += chunk
        return bool(chunk)

    while (index := buffer.find(delimiter)) < 0:  # the preamble, ignored
        buffer = buffer[-len(delimiter) :]
        if not more():
            raise StowRefused(400, BAD_BODY)
    buffer = buffer[index + len(delimiter) :]
    number = 0
    while True:
        while len(buffer) < 2 and more():
            pass
        if buffer.startswith(b"--"):
            return
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > MAX_HEADER_BYTES or not more():
                raise StowRefused(400, BAD_BODY)
        content_type = ""
        for line in buffer[:end].split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-type":
                content_type = value.split(";")[0].strip().lower()
        buffer = buffer[end + 4 :]
        number += 1
        if number > MAX_PARTS:
            raise StowRefused(413, TOO_LARGE)
        path = folder / f"part{number:05d}"
        with path.open("wb") as out:
            while (index := buffer.find(delimiter)) < 0:
                safe = len(buffer) - len(delimiter) + 1
                if safe > 0:
                    out.write(buffer[:safe])
                    buffer = buffer[safe:]
                if not more():
                    raise StowRefused(400, BAD_BODY)
            out.write(buffer[:index])
            buffer = buffer[index + len(delimiter) :]
        yield content_type, path


def _check_part(content_type: str, path: Path, study_uid: str | None) -> PartOutcome:
    if content_type not in ("application/dicom", ""):
        return PartOutcome(failure=CANNOT_UNDERSTAND, message=PART_NOT_DICOM)
    try:
        with path.open("rb") as handle:
            ds = dcmread(handle, stop_before_pixels=True)
    except (InvalidDicomError, Exception):  # pydicom raises many kinds on a bad file
        return PartOutcome(failure=CANNOT_UNDERSTAND, message=PART_UNREADABLE)
    outcome = PartOutcome(
        sop_class=str(ds.get("SOPClassUID", "")), sop_instance=str(ds.get("SOPInstanceUID", ""))
    )
    if not (outcome.sop_class and outcome.sop_instance and ds.get("StudyInstanceUID")):
        outcome.failure, outcome.message = CANNOT_UNDERSTAND, PART_NO_UIDS
    elif study_uid and str(ds.StudyInstanceUID) != study_uid:
        outcome.failure, outcome.message = DOES_NOT_MATCH, PART_OTHER_STUDY
    return outcome


def stow_into_case(
    *,
    stream: Readable,
    content_type: str,
    case: Any,
    credential: IntegrationCredential,
    study_uid: str | None,
) -> StowResult:
    """Store the instances of a STOW-RS body into ``case``. Precondition: the caller checked the
    credential may write and may reach the case. Raises StowRefused for a body it cannot read
    (then nothing is kept)."""
    boundary = boundary_of(content_type)
    storage = tenant_storage()
    result = StowResult()
    with tempfile.TemporaryDirectory(prefix="secondread-stow-") as folder:
        checked: list[tuple[PartOutcome, Path]] = []
        for part_type, path in multipart_parts(stream, boundary, Path(folder)):
            checked.append((_check_part(part_type, path, study_uid), path))
        if not checked:
            raise StowRefused(400, NO_PARTS)
        for outcome, path in checked:
            result.parts.append(outcome)
            if outcome.failure:
                continue
            public_id = uuid.uuid4()
            key = f"uploads/{case.public_id}/{public_id}"
            size = path.stat().st_size
            with path.open("rb") as handle:
                storage.save(key, handle, size)
            with transaction.atomic():
                outcome.upload = Upload.objects.create(
                    public_id=public_id,
                    case=case,
                    owner=credential.created_by,
                    kind=Upload.Kind.IMAGING,
                    status=Upload.Status.RECEIVED,
                    relative_path=f"STOW-RS/{len(result.parts)}",
                    length=size,
                    offset=size,
                    storage_key=key,
                    metadata={"source": "stow-rs", "credential": str(credential.public_id)},
                )
    _ingest(result)
    return result


def _ingest(result: StowResult) -> None:
    """Run the ingest pipeline on the new uploads now (each run claims a batch of the case's
    waiting uploads), then read back which instances the case holds."""
    uploads = [part.upload for part in result.stored if part.upload is not None]
    for upload in uploads:
        if Upload.objects.filter(pk=upload.pk, status=Upload.Status.RECEIVED).exists():
            upload_ingest_run(upload_id=upload.pk)
    if not uploads:
        return
    case = uploads[0].case
    held = set(
        Instance.objects.filter(
            series__study__case=case, sop_instance_uid__in=[part.sop_instance for part in result.stored]
        ).values_list("sop_instance_uid", flat=True)
    )
    problems: dict[int, str] = {}
    for problem in FileProblem.objects.filter(upload__in=uploads).exclude(code=FileProblem.Code.DUPLICATE):
        problems.setdefault(problem.upload_id or 0, problem.message)
    for part in result.stored:
        if part.sop_instance not in held:
            assert part.upload is not None
            part.failure = PROCESSING_FAILURE
            part.message = problems.get(part.upload.pk, PART_NOT_STORED)


def stow_answer(result: StowResult, *, retrieve_url: str) -> dict[str, Any]:
    """The Store Instances Response (PS3.18 Table 10.5.3-1) as DICOM JSON."""
    answer: dict[str, Any] = {"00081190": {"vr": "UR", "Value": [retrieve_url]}} if result.stored else {}
    if result.stored:
        answer["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": [part.sop_class]},
                    "00081155": {"vr": "UI", "Value": [part.sop_instance]},
                }
                for part in result.stored
            ],
        }
    if result.failed:
        answer["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    **({"00081150": {"vr": "UI", "Value": [part.sop_class]}} if part.sop_class else {}),
                    **({"00081155": {"vr": "UI", "Value": [part.sop_instance]}} if part.sop_instance else {}),
                    "00081197": {"vr": "US", "Value": [part.failure]},
                }
                for part in result.failed
            ],
        }
    return answer
