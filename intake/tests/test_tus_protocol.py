"""The tus 1.0 endpoint, protocol details, through Django's test client (fast, in one transaction).

Real tus clients against a real server are in test_tus_live.py.
"""

# long module: one test per rule of the tus 1.0 protocol and its extensions (creation, checksum,
# termination, expiration) and of our own limits, all against the same endpoint and fixtures, so
# a reader checks the server against the protocol in one place.

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from imaging.ingest import pipeline
from imaging.models import Instance, Series, Study, Upload
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from intake.tus import messages
from intake.tus.protocol import TusError, encode_metadata
from intake.tus.services import (
    CASE_QUOTA,
    MAX_UPLOAD_SIZE,
    PART_SIZE,
    _commit,
    _upload_lease,
    upload_staging_prefix,
)
from intake.tus.tasks import uploads_expire
from storage.base import MultipartError
from storage.filesystem import FilesystemBackend
from storage.tenant import TenantStorage, tenant_storage
from tenants.models import Institution
from tenants.schema import activate_institution
from tests.staff import staff_force_login

TUS: dict[str, Any] = {"HTTP_TUS_RESUMABLE": "1.0.0"}
ENDPOINT = "/intake/tus/"


def _sign_in(client: Client, email: str) -> Client:
    client.post("/accounts/login/", {"login": email, "password": DEMO_PASSWORD})
    assert "_auth_user_id" in client.session
    return client


@pytest.fixture
def patient_client(neuro_client: Client) -> Client:
    return _sign_in(neuro_client, "patient@neuro.example.com")


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    activate_institution(neuro)
    owner = User.objects.get(email="patient@neuro.example.com")
    yield Case.objects.create(owner=owner, consented_at=timezone.now())
    # Files written by the test's requests are outside the rolled-back transaction.
    with tenant_context(neuro):
        tenant_storage().delete_prefix("uploads")
        tenant_storage().delete_prefix("tus-staging")


@pytest.fixture
def ingest_calls(monkeypatch: pytest.MonkeyPatch) -> list[Upload]:
    """Spy on the hand-over to ingest (owned by the ingest pipeline), calling through to it."""
    calls: list[Upload] = []
    real = pipeline.upload_ingest_enqueue

    def spy(*, upload: Upload) -> Any:
        calls.append(upload)
        return real(upload=upload)

    monkeypatch.setattr(pipeline, "upload_ingest_enqueue", spy)
    return calls


def _create(client: Client, case: Case, length: int, /, **metadata: str) -> Any:
    pairs = {"case": str(case.public_id), "kind": "imaging", "filename": "IM000001", **metadata}
    return client.post(
        ENDPOINT, HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=encode_metadata(pairs), **TUS
    )


def _patch(client: Client, location: str, offset: int, data: bytes, **headers: Any) -> Any:
    return client.generic(
        "PATCH",
        location,
        data,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
        **headers,
    )


def _upload(location: str) -> Upload:
    return Upload.objects.get(public_id=location.rsplit("/", 1)[1])


def _checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def test_it_advertises_tus_1_0_and_its_extensions(patient_client: Client) -> None:
    response = patient_client.options(ENDPOINT)
    assert response.status_code == 204
    assert response["Tus-Resumable"] == "1.0.0"
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert int(response["Tus-Max-Size"]) == MAX_UPLOAD_SIZE
    assert set(response["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "md5", "sha256"}
    # Never a CORS approval: that is what keeps other sites from sending tus requests.
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_it_creates_an_upload_and_tells_where_to_resume(patient_client: Client, case: Case) -> None:
    response = _create(patient_client, case, 1000, relativePath="DICOM/IM000001")
    assert response.status_code == 201
    location = response["Location"]
    assert location.startswith("/intake/tus/") and str(case.public_id) not in location
    assert response["Upload-Expires"].endswith("GMT")
    upload = _upload(location)
    assert (upload.case, upload.kind, upload.relative_path, upload.length) == (
        case,
        "imaging",
        "DICOM/IM000001",
        1000,
    )
    assert upload.storage_key == f"uploads/{case.public_id}/{upload.public_id}"

    head = patient_client.head(location, **TUS)
    assert head.status_code == 200
    assert (head["Upload-Offset"], head["Upload-Length"]) == ("0", "1000")
    assert head["Cache-Control"] == "no-store"


def test_it_receives_chunks_of_any_size_across_parts_and_stores_the_whole_file(
    patient_client: Client, case: Case, django_capture_on_commit_callbacks: Any, ingest_calls: list[Upload]
) -> None:
    content = os.urandom(2 * PART_SIZE + 12345)
    location = _create(patient_client, case, len(content), sha256=hashlib.sha256(content).hexdigest())[
        "Location"
    ]
    offset = 0
    # Chunks smaller than a part, one crossing a part boundary, one of several parts.
    for size in (100_000, PART_SIZE, PART_SIZE // 3, len(content)):
        chunk = content[offset : offset + size]
        with django_capture_on_commit_callbacks(execute=True):
            response = _patch(patient_client, location, offset, chunk)
        assert response.status_code == 204, response.content
        offset += len(chunk)
        assert response["Upload-Offset"] == str(offset)
        if offset == len(content):
            break
    upload = _upload(location)
    assert upload.status == Upload.Status.RECEIVED
    assert upload.offset == upload.length == len(content)
    assert [call.pk for call in ingest_calls] == [upload.pk]  # handed to ingest once
    storage = tenant_storage()
    assert storage.read_bytes(upload.storage_key) == content
    # Nothing staged is left behind.
    assert list(storage.list_keys(upload_staging_prefix(upload=upload))) == []
    head = patient_client.head(location, **TUS)
    assert head["Upload-Offset"] == head["Upload-Length"] == str(len(content))


def test_it_stores_only_each_files_own_bytes_though_it_reuses_its_buffers(
    patient_client: Client, case: Case, django_capture_on_commit_callbacks: Any
) -> None:
    # The part buffers of one request are handed to the next: what the first file left in them
    # must never end up in the second, shorter one (nor in its staged tail).
    first = os.urandom(PART_SIZE + 4321)
    second, third = os.urandom(5000), os.urandom(PART_SIZE - 7)
    stored = []
    for content in (first, second, third):
        location = _create(patient_client, case, len(content) + 10)["Location"]
        with django_capture_on_commit_callbacks(execute=True):
            assert _patch(patient_client, location, 0, content).status_code == 204
            assert _patch(patient_client, location, len(content), b"0123456789").status_code == 204
        stored.append(tenant_storage().read_bytes(_upload(location).storage_key))
    assert stored == [first + b"0123456789", second + b"0123456789", third + b"0123456789"]


def test_it_takes_the_first_chunk_with_the_creation_request(patient_client: Client, case: Case) -> None:
    pairs = {
        "case": str(case.public_id),
        "filename": "report.pdf",
        "kind": "report",
        "reportKind": "radiology",
    }
    response = patient_client.post(
        ENDPOINT,
        b"x" * 700,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH="1000",
        HTTP_UPLOAD_METADATA=encode_metadata(pairs),
        **TUS,
    )
    assert response.status_code == 201
    assert response["Upload-Offset"] == "700"
    upload = _upload(response["Location"])
    assert (upload.kind, upload.metadata["reportKind"]) == ("report", "radiology")


def test_it_refuses_a_chunk_at_the_wrong_offset(patient_client: Client, case: Case) -> None:
    location = _create(patient_client, case, 1000)["Location"]
    assert _patch(patient_client, location, 0, b"a" * 400).status_code == 204
    response = _patch(patient_client, location, 300, b"b" * 100)
    assert response.status_code == 409
    assert response.content.decode() == messages.OFFSET_MISMATCH
    assert response["Upload-Offset"] == "400"
    assert _upload(location).offset == 400


def test_it_refuses_a_chunk_past_the_declared_length(patient_client: Client, case: Case) -> None:
    location = _create(patient_client, case, 100)["Location"]
    response = _patch(patient_client, location, 0, b"a" * 101)
    assert (response.status_code, response.content.decode()) == (413, messages.CHUNK_TOO_LONG)
    assert _upload(location).offset == 0


def test_it_discards_a_chunk_whose_checksum_does_not_match(
    patient_client: Client, case: Case, ingest_calls: list[Upload]
) -> None:
    content = os.urandom(PART_SIZE + 5000)
    location = _create(patient_client, case, len(content))["Location"]
    good = content[:3000]
    assert (
        _patch(patient_client, location, 0, good, HTTP_UPLOAD_CHECKSUM=_checksum("sha1", good)).status_code
        == 204
    )
    rest = content[3000:]
    damaged = rest[:-1] + bytes([rest[-1] ^ 0xFF])
    response = _patch(patient_client, location, 3000, damaged, HTTP_UPLOAD_CHECKSUM=_checksum("sha256", rest))
    assert response.status_code == 460
    assert response.content.decode() == messages.CHECKSUM_MISMATCH
    assert _upload(location).offset == 3000
    # The same chunk sent again intact is accepted, and the file is exactly the original.
    response = _patch(patient_client, location, 3000, rest, HTTP_UPLOAD_CHECKSUM=_checksum("md5", rest))
    assert response.status_code == 204
    upload = _upload(location)
    assert upload.status == Upload.Status.RECEIVED
    assert tenant_storage().read_bytes(upload.storage_key) == content


def test_it_refuses_a_checksum_it_cannot_read(patient_client: Client, case: Case) -> None:
    location = _create(patient_client, case, 10)["Location"]
    response = _patch(patient_client, location, 0, b"0123456789", HTTP_UPLOAD_CHECKSUM="crc32 AAAA")
    assert (response.status_code, response.content.decode()) == (400, messages.CHECKSUM_ALGORITHM_UNSUPPORTED)
    response = _patch(patient_client, location, 0, b"0123456789", HTTP_UPLOAD_CHECKSUM="sha1 not-base64!")
    assert (response.status_code, response.content.decode()) == (400, messages.CHECKSUM_INVALID)
    assert _upload(location).offset == 0


def test_it_fails_a_file_whose_whole_sha256_differs(patient_client: Client, case: Case) -> None:
    content = b"the original bytes"
    location = _create(patient_client, case, len(content), sha256=hashlib.sha256(b"other").hexdigest())[
        "Location"
    ]
    response = _patch(patient_client, location, 0, content)
    assert response.status_code == 460
    assert response.content.decode() == messages.WHOLE_FILE_MISMATCH
    upload = _upload(location)
    assert (upload.status, upload.error_message) == (Upload.Status.FAILED, messages.WHOLE_FILE_MISMATCH)
    assert not tenant_storage().exists(upload.storage_key)


def test_it_checks_the_whole_sha256_as_the_bytes_arrive_or_reads_a_file_sent_in_pieces_back(
    patient_client: Client, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_back: list[str] = []
    original_open = TenantStorage.open

    def spy(self: TenantStorage, key: str) -> Any:
        read_back.append(key)
        return original_open(self, key)

    monkeypatch.setattr(TenantStorage, "open", spy)
    content = os.urandom(3 * 1024 * 1024)
    # In one request: hashed while received, never read back, and a changed byte is refused.
    for sent, status in ((content, 204), (content[:-1] + b"!", 460)):
        location = _create(patient_client, case, len(content), sha256=hashlib.sha256(content).hexdigest())[
            "Location"
        ]
        assert _patch(patient_client, location, 0, sent).status_code == status
    assert read_back == []
    # In two requests (a resumed upload): read back once complete, and refused all the same.
    location = _create(patient_client, case, len(content), sha256=hashlib.sha256(content).hexdigest())[
        "Location"
    ]
    assert _patch(patient_client, location, 0, content[:1000]).status_code == 204
    response = _patch(patient_client, location, 1000, content[1000:-1] + b"!")
    assert response.status_code == 460
    assert _upload(location).status == Upload.Status.FAILED
    # (the first piece's staged tail is read back too, to go on filling its part)
    assert read_back[-1] == _upload(location).storage_key


def test_it_terminates_an_upload_and_deletes_its_bytes(
    patient_client: Client, case: Case, django_capture_on_commit_callbacks: Any
) -> None:
    location = _create(patient_client, case, 3 * PART_SIZE)["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        _patch(patient_client, location, 0, os.urandom(PART_SIZE + 10))
    upload = _upload(location)
    assert len(upload.parts) == 1 and upload.tail_key
    response = patient_client.delete(location, **TUS)
    assert response.status_code == 204
    assert not Upload.objects.filter(pk=upload.pk).exists()
    assert patient_client.head(location, **TUS).status_code == 404
    storage = tenant_storage()
    assert list(storage.list_keys(upload_staging_prefix(upload=upload))) == []
    with pytest.raises(MultipartError):  # the multipart upload and its parts are gone
        storage.multipart_complete(upload.storage_key, upload.multipart_id, [(1, upload.parts[0][1])])


def test_it_expires_unfinished_uploads_and_leaves_no_bytes(
    patient_client: Client, case: Case, neuro: Institution, django_capture_on_commit_callbacks: Any
) -> None:
    location = _create(patient_client, case, 3 * PART_SIZE)["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        _patch(patient_client, location, 0, os.urandom(PART_SIZE + 10))
    fresh = _upload(_create(patient_client, case, 10)["Location"])
    upload = _upload(location)
    multipart_id, first_part = upload.multipart_id, upload.parts[0]
    Upload.objects.filter(pk=upload.pk).update(expires_at=upload.created)
    response = _patch(patient_client, location, upload.offset, b"late")
    assert (response.status_code, response.content.decode()) == (410, messages.UPLOAD_EXPIRED)

    with tenant_context(neuro):
        assert uploads_expire.apply().get() == 1
        assert uploads_expire.apply().get() == 0  # running it twice does no harm
    upload.refresh_from_db()
    assert (upload.status, upload.parts, upload.tail_key) == (Upload.Status.EXPIRED, [], "")
    storage = tenant_storage()
    assert list(storage.list_keys(upload_staging_prefix(upload=upload))) == []
    assert not storage.exists(upload.storage_key)
    with pytest.raises(MultipartError):  # the multipart upload and its parts are gone
        storage.multipart_complete(upload.storage_key, multipart_id, [tuple(first_part)])
    fresh.refresh_from_db()
    assert fresh.status == Upload.Status.RECEIVING  # not yet due
    assert patient_client.head(location, **TUS).status_code == 410


def test_it_refuses_uploads_from_anyone_but_the_cases_owner(
    patient_client: Client, case: Case, neuro: Institution, cancer: Institution
) -> None:
    location = _create(patient_client, case, 100)["Location"]

    logged_out = Client(HTTP_HOST="neuro.localhost")
    assert logged_out.head(location, **TUS).status_code == 403
    response = _patch(logged_out, location, 0, b"x" * 10)
    assert (response.status_code, response.content.decode()) == (403, messages.SIGN_IN)
    assert _create(logged_out, case, 10).status_code == 403

    activate_institution(neuro)
    User.objects.create_user("other.patient@example.com", DEMO_PASSWORD)
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(
        user=User.objects.get(email="other.patient@example.com"),
        email="other.patient@example.com",
        verified=True,
        primary=True,
    )
    other = _sign_in(Client(HTTP_HOST="neuro.localhost"), "other.patient@example.com")
    for response in (
        other.head(location, **TUS),
        _patch(other, location, 0, b"x" * 10),
        other.delete(location, **TUS),
    ):
        assert response.status_code == 404
    response = _create(other, case, 10)
    assert (response.status_code, response.content.decode()) == (404, messages.CASE_NOT_FOUND)

    # Staff read cases in the workspace; they never write into a patient's upload.
    coordinator = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(coordinator, "coordinator@neuro.example.com")
    activate_institution(neuro)
    assert _patch(coordinator, location, 0, b"x" * 10).status_code == 404
    assert coordinator.head(location, **TUS).status_code == 404

    # A patient of another institution, signed in there, sending their session to this one.
    cancer_patient = _sign_in(Client(HTTP_HOST="cancer.localhost"), "patient@cancer.example.com")
    assert cancer_patient.head(location, **TUS).status_code == 404
    activate_institution(neuro)
    assert _upload(location).offset == 0


def test_it_refuses_files_for_a_case_already_sent_for_review(patient_client: Client, case: Case) -> None:
    location = _create(patient_client, case, 100)["Location"]
    Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED)
    response = _create(patient_client, case, 100)
    assert (response.status_code, response.content.decode()) == (403, messages.CASE_LOCKED)
    response = _patch(patient_client, location, 0, b"x" * 10)
    assert (response.status_code, response.content.decode()) == (403, messages.CASE_LOCKED)


def test_it_explains_the_size_limits(patient_client: Client, case: Case) -> None:
    response = _create(patient_client, case, MAX_UPLOAD_SIZE + 1)
    assert response.status_code == 413
    assert response.content.decode() == messages.FILE_TOO_LARGE.format(limit="4.0 GB")

    Upload.objects.create(case=case, owner=case.owner, length=CASE_QUOTA - 500, storage_key="uploads/x/y")
    assert _create(patient_client, case, 500).status_code == 201
    response = _create(patient_client, case, 1)
    assert response.status_code == 413
    assert response.content.decode() == messages.CASE_QUOTA_EXCEEDED.format(used="20.0 GB", limit="20.0 GB")


def test_it_leaves_no_staging_behind_when_a_quota_refuses_a_file(patient_client: Client, case: Case) -> None:
    # The multipart upload is opened before the quota is checked (no storage call under the
    # case's lock), so a refusal must close it again.
    backend = tenant_storage().backend
    assert isinstance(backend, FilesystemBackend)
    staging = backend.root / ".multipart"
    before = set(staging.iterdir()) if staging.is_dir() else set()
    Upload.objects.create(case=case, owner=case.owner, length=CASE_QUOTA - 500, storage_key="uploads/x/y")
    response = _create(patient_client, case, 501)
    assert response.status_code == 413
    assert not Upload.objects.filter(case=case, length=501).exists()
    assert (set(staging.iterdir()) if staging.is_dir() else set()) == before


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"case": ""}, messages.CASE_MISSING),
        ({"kind": "video"}, messages.KIND_INVALID),
        ({"kind": "report", "reportKind": "horoscope"}, messages.REPORT_KIND_INVALID),
        ({"sha256": "abc"}, messages.SHA256_INVALID),
        ({"filename": "IM\n0001"}, messages.FILENAME_INVALID),
        ({"relativePath": "A/" * 600}, messages.PATH_INVALID),
        ({"batchFiles": "0"}, messages.BATCH_FILES_INVALID),
        ({"batchFiles": "many"}, messages.BATCH_FILES_INVALID),
        ({"batchFiles": "100000"}, messages.BATCH_FILES_INVALID),
        ({"kind": "report", "batchFiles": "2"}, messages.BATCH_FILES_INVALID),
    ],
)
def test_it_explains_invalid_metadata(
    patient_client: Client, case: Case, metadata: dict[str, str], message: str
) -> None:
    response = _create(patient_client, case, 10, **metadata)
    assert (response.status_code, response.content.decode()) == (400, message)
    assert not Upload.objects.filter(case=case).exists()


def test_it_explains_malformed_headers(patient_client: Client, case: Case) -> None:
    bad_base64 = patient_client.post(
        ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA="case !!!", **TUS
    )
    assert (bad_base64.status_code, bad_base64.content.decode()) == (400, messages.METADATA_INVALID)
    meta = encode_metadata({"case": str(case.public_id)})
    no_length = patient_client.post(ENDPOINT, HTTP_UPLOAD_METADATA=meta, **TUS)
    assert (no_length.status_code, no_length.content.decode()) == (400, messages.LENGTH_MISSING)
    bad_length = patient_client.post(ENDPOINT, HTTP_UPLOAD_LENGTH="-5", HTTP_UPLOAD_METADATA=meta, **TUS)
    assert (bad_length.status_code, bad_length.content.decode()) == (400, messages.LENGTH_INVALID)
    location = _create(patient_client, case, 10)["Location"]
    wrong_type = patient_client.generic(
        "PATCH", location, b"x", content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
    )
    assert (wrong_type.status_code, wrong_type.content.decode()) == (415, messages.CONTENT_TYPE_INVALID)


def test_it_refuses_requests_without_the_tus_header(patient_client: Client, case: Case) -> None:
    """The header is the endpoint's CSRF defence: a cross-site form cannot send it."""
    meta = encode_metadata({"case": str(case.public_id)})
    response = patient_client.post(ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=meta)
    assert (response.status_code, response.content.decode()) == (412, messages.MISSING_TUS_HEADER)
    response = patient_client.post(
        ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=meta, HTTP_TUS_RESUMABLE="0.2.2"
    )
    assert (response.status_code, response["Tus-Version"]) == (412, "1.0.0")
    assert not Upload.objects.filter(case=case).exists()


def test_it_lists_a_cases_uploads_with_their_progress(patient_client: Client, case: Case) -> None:
    from intake.tus.selectors import case_uploads

    location = _create(patient_client, case, 1000, filename="IM000002")["Location"]
    _patch(patient_client, location, 0, b"x" * 250)
    (progress,) = case_uploads(case=case)
    assert (progress.filename, progress.offset, progress.length, progress.percent) == (
        "IM000002",
        250,
        1000,
        25,
    )
    assert progress.status_label == "Receiving"


def test_it_refuses_the_whole_creation_when_its_first_chunk_is_refused(
    patient_client: Client, case: Case
) -> None:
    content = os.urandom(PART_SIZE + 700)
    damaged = bytes([content[0] ^ 0xFF]) + content[1:]
    meta = encode_metadata({"case": str(case.public_id), "filename": "IM000001"})
    refused = patient_client.post(
        ENDPOINT,
        damaged,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH=str(len(content)),
        HTTP_UPLOAD_METADATA=meta,
        HTTP_UPLOAD_CHECKSUM=_checksum("sha256", content),
        **TUS,
    )
    assert (refused.status_code, refused.content.decode()) == (460, messages.CHECKSUM_MISMATCH)
    too_long = patient_client.post(
        ENDPOINT,
        content,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_METADATA=meta,
        **TUS,
    )
    assert (too_long.status_code, too_long.content.decode()) == (413, messages.CHUNK_TOO_LONG)
    # No upload is left behind to hold the case's quota, and no bytes.
    assert "Location" not in refused and "Location" not in too_long
    assert not Upload.objects.filter(case=case).exists()
    assert list(tenant_storage().list_keys("tus-staging")) == []
    assert list(tenant_storage().list_keys(f"uploads/{case.public_id}")) == []


def test_it_keeps_a_received_file_when_asked_to_delete_it(
    patient_client: Client, case: Case, django_capture_on_commit_callbacks: Any
) -> None:
    """Nothing removes what ingest made of a file yet: deleting only the upload would leave its
    images in the case, so a received file stays, with a clear refusal (the case is a draft)."""
    content = os.urandom(2000)
    location = _create(patient_client, case, len(content))["Location"]
    with django_capture_on_commit_callbacks(execute=False):
        assert _patch(patient_client, location, 0, content).status_code == 204
    assert case.status == Case.Status.DRAFT

    response = patient_client.delete(location, **TUS)

    assert (response.status_code, response.content.decode()) == (409, messages.UPLOAD_NOT_TERMINABLE)
    upload = _upload(location)
    assert upload.status == Upload.Status.RECEIVED
    assert tenant_storage().read_bytes(upload.storage_key) == content

    # Nor an upload that failed in ingest after keeping an image of it.
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.FAILED)
    study = Study.objects.create(case=case, study_instance_uid="1.2.3")
    series = Series.objects.create(study=study, series_instance_uid="1.2.3.4")
    Instance.objects.create(series=series, sop_instance_uid="1.2.3.4.5", storage_key="x", upload=upload)
    response = patient_client.delete(location, **TUS)
    assert (response.status_code, response.content.decode()) == (409, messages.UPLOAD_NOT_TERMINABLE)
    assert Upload.objects.filter(pk=upload.pk).exists()


def test_it_refuses_a_second_writer_of_the_same_file_only(patient_client: Client, case: Case) -> None:
    """While one request is receiving a file (it holds the file's lease), a second request for
    that same file is told so (423) and nothing changes; another file of the case goes on."""
    busy = _create(patient_client, case, 10)["Location"]
    other = _create(patient_client, case, 10)["Location"]
    with _upload_lease(_upload(busy)):
        refused = _patch(patient_client, busy, 0, b"0123456789")
        assert (refused.status_code, refused.content.decode()) == (423, messages.UPLOAD_BUSY)
        assert _patch(patient_client, other, 0, b"0123456789").status_code == 204
    assert _upload(busy).offset == 0
    assert _patch(patient_client, busy, 0, b"0123456789").status_code == 204  # the lease is gone


def test_it_refuses_a_commit_whose_offset_moved_meanwhile(patient_client: Client, case: Case) -> None:
    """The compare-and-set: a request whose lease lapsed (it stalled) and whose offset another
    request moved meanwhile keeps nothing of its own and says where the file stands."""
    location = _create(patient_client, case, 20)["Location"]
    upload = _upload(location)
    Upload.objects.filter(pk=upload.pk).update(offset=5)  # what the other request committed
    with pytest.raises(TusError) as refused:
        _commit(upload=upload, expected_offset=0, offset=10)
    assert (refused.value.status, refused.value.headers) == (409, {"Upload-Offset": "5"})
    assert _upload(location).offset == 5


# The test client leaves out the type and length of an empty body; a tus client sends both.
EMPTY = {"CONTENT_TYPE": "application/offset+octet-stream", "CONTENT_LENGTH": "0"}


def test_an_empty_patch_takes_no_lease(
    patient_client: Client, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty PATCH writes nothing: it says whether a request is receiving the file (423) or
    where the file stands (409 at a wrong offset) without taking the lease, so it can never
    turn away the request that is about to send the bytes."""
    location = _create(patient_client, case, 10)["Location"]
    with _upload_lease(_upload(location)):
        busy = _patch(patient_client, location, 1, b"", **EMPTY)
        assert (busy.status_code, busy.content.decode()) == (423, messages.UPLOAD_BUSY)

    def lease_taken(self: object) -> None:
        raise AssertionError("an empty PATCH took the lease")

    monkeypatch.setattr("intake.tus.services._Lease.acquire", lease_taken)
    moved = _patch(patient_client, location, 1, b"", **EMPTY)
    assert (moved.status_code, moved["Upload-Offset"]) == (409, "0")
    assert _patch(patient_client, location, 0, b"", **EMPTY).status_code == 204
