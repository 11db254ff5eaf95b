"""A real tus client (tuspy) against the real server (gunicorn): whole uploads, a connection cut
midway and resumed, a damaged chunk, two chunks at once, and outsiders trying to resume.

The live server runs in another process and cannot see the tests' uncommitted data, so the case
is created committed by a module fixture (and deleted after); everything else goes over HTTP.
"""

# long module: every test shares one live server and one committed case (module fixtures); a
# second module would start them again.

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from allauth.account.models import EmailAddress
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from accounts.models import User
from imaging.models import Upload
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from intake.tus import messages
from intake.tus.protocol import encode_metadata
from intake.tus.services import PART_SIZE, upload_staging_prefix
from intake.tus.tasks import uploads_expire_all
from storage.base import MiB, MultipartError
from storage.tenant import tenant_storage
from tests.live import LiveServer
from tests.waiting import wait_until

HOST = "neuro.localhost"
CHUNK = 4 * MiB
OTHER_PATIENT = "second.patient@example.com"

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@dataclass
class Patient:
    """A signed-in browser-less patient: the cookies tuspy and requests send."""

    server: LiveServer
    cookie: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/intake/tus/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": HOST, "Cookie": self.cookie}

    def uploader(self, **options: Any) -> Any:
        """A tuspy uploader sending this patient's cookies (typed Any: tuspy's hints say its
        ``url`` is always None)."""
        return TusClient(self.endpoint, headers=self.headers).uploader(**options)

    def url(self, location: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{location}"

    def head(self, upload_url: str) -> requests.Response:
        return requests.head(upload_url, headers={**self.headers, "Tus-Resumable": "1.0.0"}, timeout=60)


def _sign_in(server: LiveServer, email: str) -> Patient:
    session = requests.Session()
    base = f"http://127.0.0.1:{server.port}"
    page = session.get(f"{base}/accounts/login/", headers={"Host": HOST}, timeout=60)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "no sign-in form"
    session.post(
        f"{base}/accounts/login/",
        data={"login": email, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={"Host": HOST},
        allow_redirects=False,
        timeout=10,
    )
    assert "sessionid" in session.cookies, "sign-in failed"
    return Patient(server, "; ".join(f"{name}={value}" for name, value in session.cookies.items()))


@pytest.fixture(scope="module")
def committed_case(django_db_setup: None, django_db_blocker: Any) -> Iterator[Case]:
    """A draft case of patient@neuro and a second patient, committed for the live server."""
    with django_db_blocker.unblock(), schema_context("neuro"):
        owner = User.objects.get(email="patient@neuro.example.com")
        case = Case.objects.create(owner=owner, consented_at=timezone.now())
        other = User.objects.create_user(OTHER_PATIENT, DEMO_PASSWORD)
        EmailAddress.objects.create(user=other, email=OTHER_PATIENT, verified=True, primary=True)
    yield case
    with django_db_blocker.unblock(), schema_context("neuro"):
        # The live worker may still be ingesting a file a test sent (writing its problems and
        # images): the case goes once it is done, not under its feet.
        wait_until(
            lambda: (
                not Upload.objects.filter(
                    case=case, status__in=[Upload.Status.RECEIVED, Upload.Status.INGESTING]
                ).exists()
            ),
            timeout=60,
            message="the live worker never finished ingesting the test's uploads",
        )
        for upload in Upload.objects.filter(case=case):
            storage = tenant_storage()
            if upload.multipart_id:
                storage.multipart_abort(upload.storage_key, upload.multipart_id)
            storage.delete_prefix(upload_staging_prefix(upload=upload))
        tenant_storage().delete_prefix(f"uploads/{case.public_id}")
        Case.objects.filter(pk=case.pk).delete()
        User.objects.filter(email=OTHER_PATIENT).delete()


@pytest.fixture(scope="module")
def patient(request: pytest.FixtureRequest) -> Patient:
    server: LiveServer = request.getfixturevalue("live_platform")
    return _sign_in(server, "patient@neuro.example.com")


class CountingFile(io.BytesIO):
    """The file a client uploads, counting the bytes the client read from it to send."""

    sent = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.sent += len(data)
        return data


def _metadata(case: Case, content: bytes, **extra: str) -> dict[str, str]:
    return {
        "case": str(case.public_id),
        "kind": "imaging",
        "filename": "IM000001",
        "relativePath": "DICOM/IM000001",
        "sha256": hashlib.sha256(content).hexdigest(),
        **extra,
    }


def _stored(upload_url: str) -> Upload:
    with schema_context("neuro"):
        return Upload.objects.get(public_id=upload_url.rsplit("/", 1)[1])


def _raw_patch(patient: Patient, upload_url: str, offset: int, data: bytes, declared: int) -> socket.socket:
    """Start a PATCH announcing ``declared`` bytes and send only ``data``; the caller closes it
    (a dropped connection) or sends the rest."""
    path = upload_url.split(str(patient.server.port), 1)[1]
    connection = socket.create_connection(("127.0.0.1", patient.server.port))
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {patient.cookie}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    connection.sendall(head.encode() + data)
    return connection


def _wait_for_offset(patient: Patient, upload_url: str, expected: int) -> None:
    wait_until(
        lambda: patient.head(upload_url).headers.get("Upload-Offset") == str(expected),
        timeout=15,
        message=f"the offset never reached {expected}",
    )


def _wait_for_lease(patient: Patient, upload_url: str) -> None:
    """Until the server holds the upload's lease (it takes it as soon as it has a PATCH's
    headers). Probed with an empty PATCH at a wrong offset: the lease is checked first, so the
    probe answers 423 while it is held and 409 otherwise, and never writes a byte."""

    def leased() -> bool:
        response = requests.patch(
            upload_url,
            data=b"",
            headers={
                **patient.headers,
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "1",
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=30,
        )
        assert response.status_code in (409, 423), response.status_code
        return response.status_code == 423

    wait_until(leased, timeout=15, message="the server never took the upload's lease")


def test_it_receives_a_whole_file_from_a_real_tus_client(patient: Patient, committed_case: Case) -> None:
    content = os.urandom(3 * CHUNK + 12345)
    uploader = patient.uploader(
        file_stream=io.BytesIO(content),
        chunk_size=CHUNK,
        metadata=_metadata(committed_case, content),
        upload_checksum=True,
    )
    uploader.upload()
    upload = _stored(uploader.url)
    # Received whole; a worker of the live session may already be ingesting (or have refused)
    # these random bytes, so any state past receiving is right here.
    assert upload.status != Upload.Status.RECEIVING
    assert (upload.offset, upload.length, upload.relative_path) == (
        len(content),
        len(content),
        "DICOM/IM000001",
    )
    with schema_context("neuro"):
        assert tenant_storage().read_bytes(upload.storage_key) == content
        assert list(tenant_storage().list_keys(upload_staging_prefix(upload=upload))) == []


def test_it_resumes_a_cut_upload_sending_only_what_was_missing(
    patient: Patient, committed_case: Case
) -> None:
    content = os.urandom(6 * CHUNK + 777)
    first = CountingFile(content)
    uploader = patient.uploader(
        file_stream=first, chunk_size=CHUNK, metadata=_metadata(committed_case, content)
    )
    uploader.upload(stop_at=3 * CHUNK)  # three whole chunks arrive...
    # ...then the connection drops in the middle of the fourth.
    cut_at = 3 * CHUNK + CHUNK // 2 + 1234
    connection = _raw_patch(patient, uploader.url, 3 * CHUNK, content[3 * CHUNK : cut_at], declared=CHUNK)
    connection.close()
    _wait_for_offset(patient, uploader.url, cut_at)  # what arrived before the cut is kept

    # A new client (say, after the tab was reopened) asks where to resume and sends the rest.
    resumed = CountingFile(content)
    again = patient.uploader(file_stream=resumed, chunk_size=CHUNK, url=uploader.url)
    assert again.offset == cut_at
    again.upload()
    sent_in_total = first.sent + (cut_at - 3 * CHUNK) + resumed.sent
    print(f"resume: {resumed.sent} bytes sent for {len(content) - cut_at} missing")
    assert resumed.sent == len(content) - cut_at
    assert sent_in_total - len(content) <= CHUNK  # at most one chunk is ever sent twice
    upload = _stored(uploader.url)
    # Complete: a worker left running by an earlier test may already be checking it (random
    # bytes, refused and kept as they are), as ingest follows completion at once.
    assert upload.offset == upload.length == len(content)
    assert upload.status in (Upload.Status.RECEIVED, Upload.Status.INGESTING, Upload.Status.FAILED)
    with schema_context("neuro"):
        assert tenant_storage().read_bytes(upload.storage_key) == content


def test_it_refuses_a_damaged_chunk_and_keeps_what_it_had(patient: Patient, committed_case: Case) -> None:
    content = os.urandom(2 * CHUNK)
    uploader = patient.uploader(
        file_stream=io.BytesIO(content), chunk_size=CHUNK, metadata=_metadata(committed_case, content)
    )
    uploader.upload(stop_at=CHUNK)
    sha1 = hashlib.sha1(content[CHUNK:], usedforsecurity=False).digest()
    damaged = bytearray(content[CHUNK:])
    damaged[1000] ^= 0xFF
    response = requests.patch(
        uploader.url,
        data=bytes(damaged),
        headers={
            **patient.headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(CHUNK),
            "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": f"sha1 {base64.b64encode(sha1).decode()}",
        },
        timeout=30,
    )
    assert response.status_code == 460
    assert response.text == messages.CHECKSUM_MISMATCH
    assert patient.head(uploader.url).headers["Upload-Offset"] == str(CHUNK)
    assert _stored(uploader.url).offset == CHUNK


def test_it_refuses_a_second_chunk_while_one_is_being_received(
    patient: Patient, committed_case: Case
) -> None:
    content = os.urandom(CHUNK)
    uploader = patient.uploader(
        file_stream=io.BytesIO(content), chunk_size=CHUNK, metadata=_metadata(committed_case, content)
    )
    uploader.set_url(uploader.create_url())
    slow = _raw_patch(patient, uploader.url, 0, content[: CHUNK // 2], declared=CHUNK)
    try:
        _wait_for_lease(patient, uploader.url)
        response = requests.patch(
            uploader.url,
            data=content,
            headers={
                **patient.headers,
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=30,
        )
        assert (response.status_code, response.text) == (423, messages.UPLOAD_BUSY)
    finally:
        slow.close()
    _wait_for_offset(patient, uploader.url, CHUNK // 2)


def _open_transactions_elsewhere() -> list[str]:
    """What other sessions of the test database are doing inside a transaction right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, left(query, 80) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        )
        return [f"{state}: {query}" for state, query in cursor.fetchall()]


def test_it_takes_other_files_of_the_case_while_one_arrives_slowly(
    patient: Patient, committed_case: Case
) -> None:
    """A slow chunk holds no transaction and no lock: other files of the same case go on."""
    slow_content, other_content = os.urandom(CHUNK), os.urandom(CHUNK)
    slow_upload = patient.uploader(
        file_stream=io.BytesIO(slow_content),
        chunk_size=CHUNK,
        metadata=_metadata(committed_case, slow_content),
    )
    slow_upload.set_url(slow_upload.create_url())
    slow = _raw_patch(patient, slow_upload.url, 0, slow_content[: CHUNK // 2], declared=CHUNK)
    try:
        _wait_for_lease(patient, slow_upload.url)  # the server now waits for the rest of the body
        assert _open_transactions_elsewhere() == []
        other = patient.uploader(
            file_stream=io.BytesIO(other_content),
            chunk_size=CHUNK,
            metadata=_metadata(committed_case, other_content, relativePath="DICOM/IM000002"),
        )
        other.upload()  # no 423: it is another file
        assert _stored(other.url).offset == CHUNK
        slow.sendall(slow_content[CHUNK // 2 :])
        assert slow.recv(4096).startswith(b"HTTP/1.1 204")
    finally:
        slow.close()
    assert _stored(slow_upload.url).offset == CHUNK


def test_it_refuses_another_patient_trying_to_resume(patient: Patient, committed_case: Case) -> None:
    content = os.urandom(2 * CHUNK)
    uploader = patient.uploader(
        file_stream=io.BytesIO(content), chunk_size=CHUNK, metadata=_metadata(committed_case, content)
    )
    uploader.upload(stop_at=CHUNK)
    stranger = _sign_in(patient.server, OTHER_PATIENT)
    with pytest.raises(TusCommunicationError):
        stranger.uploader(file_stream=io.BytesIO(content), chunk_size=CHUNK, url=uploader.url)
    headers = {
        **stranger.headers,
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": str(CHUNK),
        "Content-Type": "application/offset+octet-stream",
    }
    assert requests.patch(uploader.url, data=content[CHUNK:], headers=headers, timeout=30).status_code == 404
    assert requests.delete(uploader.url, headers=headers, timeout=60).status_code == 404
    logged_out = {key: value for key, value in headers.items() if key != "Cookie"}
    assert (
        requests.patch(uploader.url, data=content[CHUNK:], headers=logged_out, timeout=30).status_code == 403
    )
    # Nor can they start uploading into the case.
    creation = requests.post(
        stranger.endpoint,
        headers={
            **stranger.headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": uploader.get_url_creation_headers()["upload-metadata"],
        },
        timeout=10,
    )
    assert (creation.status_code, creation.text) == (404, messages.CASE_NOT_FOUND)
    assert _stored(uploader.url).offset == CHUNK


def _committed(work: Callable[[], object]) -> None:
    """Run ``work`` on a connection of its own (another thread), so it commits at once and the
    worker sees it; the test's own connection is inside a transaction that is rolled back."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with schema_context("neuro"):
                work()
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker_process")
def test_it_expires_an_abandoned_upload_leaving_no_bytes(patient: Patient, committed_case: Case) -> None:
    content = os.urandom(2 * PART_SIZE)
    uploader = patient.uploader(
        file_stream=io.BytesIO(content),
        chunk_size=PART_SIZE + 1000,
        metadata=_metadata(committed_case, content),
    )
    uploader.upload(stop_at=PART_SIZE + 1000)  # one full multipart part and a staged tail
    upload = _stored(uploader.url)
    assert upload.parts and upload.tail_key
    _committed(lambda: Upload.objects.filter(pk=upload.pk).update(expires_at=upload.created))

    uploads_expire_all.delay()  # what beat sends, from the public schema
    wait_until(
        lambda: _stored(uploader.url).status == Upload.Status.EXPIRED,
        timeout=60,  # the session's worker may be starting on a busy machine
        message="the worker did not expire the upload",
    )
    with schema_context("neuro"):
        storage = tenant_storage()
        assert list(storage.list_keys(upload_staging_prefix(upload=upload))) == []
        assert not storage.exists(upload.storage_key)
        with pytest.raises(MultipartError):  # its multipart upload and parts are gone
            storage.multipart_complete(upload.storage_key, upload.multipart_id, [tuple(upload.parts[0])])
    head = patient.head(uploader.url)
    assert head.status_code == 410


def _raw_chunked_patch(patient: Patient, upload_url: str, offset: int, framed: bytes) -> tuple[int, str]:
    """Send a PATCH whose body is ``framed`` (chunked transfer encoding, framing included);
    return the status and the body of the answer."""
    path = upload_url.split(str(patient.server.port), 1)[1]
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {patient.cookie}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", patient.server.port), timeout=15) as raw:
        raw.sendall(head.encode() + framed)
        answer = b""
        while data := raw.recv(65536):
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


def test_it_explains_a_chunk_sent_in_broken_chunked_encoding(patient: Patient, committed_case: Case) -> None:
    content = os.urandom(1000)
    uploader = patient.uploader(
        file_stream=io.BytesIO(content), chunk_size=CHUNK, metadata=_metadata(committed_case, content)
    )
    uploader.set_url(uploader.create_url())
    upload_url = uploader.url

    # A chunk size that is not hexadecimal, then a chunk missing its CRLF terminator.
    for framed in (b"zz\r\n" + content[:100] + b"\r\n0\r\n\r\n", b"64\r\n" + content[:100] + b"XX0\r\n\r\n"):
        assert _raw_chunked_patch(patient, upload_url, 0, framed) == (400, messages.CHUNKED_INVALID)
        assert _stored(upload_url).offset == 0  # nothing of it was kept

    # Well-formed chunked encoding is accepted (not the whole file: a complete one would be
    # handed to the module's worker while the case is being deleted).
    framed = b"%x\r\n%s\r\n0\r\n\r\n" % (600, content[:600])
    assert _raw_chunked_patch(patient, upload_url, 0, framed)[0] == 204
    assert _stored(upload_url).offset == 600


def _answers(raw: socket.socket, count: int) -> list[tuple[int, dict[str, str]]]:
    """Read ``count`` answers without bodies (204s, and answers to HEAD) from ``raw``: status
    and headers of each."""
    received = b""
    while received.count(b"\r\n\r\n") < count:
        data = raw.recv(65536)
        assert data, "the server closed the connection"
        received += data
    answers = []
    for head in received.split(b"\r\n\r\n")[:count]:
        status_line, *lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        answers.append((int(status_line.split()[1]), headers))
    return answers


def _raw_request(
    patient: Patient, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}",
        f"Cookie: {patient.cookie}",
        "Tus-Resumable: 1.0.0",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines += ["Content-Type: application/offset+octet-stream", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_it_takes_a_whole_batch_in_its_creation_request_and_the_rest_in_one_patch(
    patient: Patient, committed_case: Case
) -> None:
    """As the wizard sends a folder drop's batches: creation-with-upload, then (over 8 MiB)
    one PATCH with the rest, both read from gunicorn's socket into the part buffers."""
    whole, split = os.urandom(PART_SIZE // 2 + 1), os.urandom(PART_SIZE + PART_SIZE // 3)
    with socket.create_connection(("127.0.0.1", patient.server.port), timeout=30) as raw:
        for content, first in ((whole, len(whole)), (split, PART_SIZE)):
            metadata = encode_metadata(_metadata(committed_case, content))
            raw.sendall(
                _raw_request(
                    patient,
                    "POST",
                    "/intake/tus/",
                    {"Upload-Length": str(len(content)), "Upload-Metadata": metadata},
                    content[:first],
                )
            )
            [(status, headers)] = _answers(raw, 1)
            assert (status, headers["Upload-Offset"]) == (201, str(first))
            if first < len(content):
                raw.sendall(
                    _raw_request(
                        patient, "PATCH", headers["Location"], {"Upload-Offset": str(first)}, content[first:]
                    )
                )
                [(status, headers_after)] = _answers(raw, 1)
                assert (status, headers_after["Upload-Offset"]) == (204, str(len(content)))
            upload = _stored(patient.url(headers["Location"]))
            assert upload.status != Upload.Status.RECEIVING and upload.offset == len(content)
            with schema_context("neuro"):
                assert tenant_storage().read_bytes(upload.storage_key) == content


def test_it_answers_a_request_sent_right_behind_a_chunk_on_the_same_connection(
    patient: Patient, committed_case: Case
) -> None:
    content = os.urandom(3 * CHUNK)
    uploader = patient.uploader(
        file_stream=io.BytesIO(content), chunk_size=CHUNK, metadata=_metadata(committed_case, content)
    )
    uploader.set_url(uploader.create_url())
    path = uploader.url.split(str(patient.server.port), 1)[1]
    # A chunk and a HEAD pipelined in one write: the chunk's reader must stop at its last byte
    # and leave the HEAD to gunicorn.
    patch = _raw_request(patient, "PATCH", path, {"Upload-Offset": "0"}, content[:CHUNK])
    with socket.create_connection(("127.0.0.1", patient.server.port), timeout=30) as raw:
        raw.sendall(patch + _raw_request(patient, "HEAD", path, {}))
        (patched, after_patch), (headed, after_head) = _answers(raw, 2)
    assert (patched, after_patch["Upload-Offset"]) == (204, str(CHUNK))
    assert (headed, after_head["Upload-Offset"]) == (200, str(CHUNK))
    with schema_context("neuro"):
        assert not tenant_storage().exists(_stored(uploader.url).storage_key)  # not complete yet
    again = patient.uploader(file_stream=io.BytesIO(content), chunk_size=CHUNK, url=uploader.url)
    assert again.offset == CHUNK
    again.upload()
    with schema_context("neuro"):
        assert tenant_storage().read_bytes(_stored(uploader.url).storage_key) == content
