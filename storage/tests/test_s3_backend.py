"""What only the S3 backend does: presigned URLs that a plain HTTP client can use."""

import io
import os
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from storage.s3 import S3Backend
from storage.tests.conftest import make_s3_backend
from tests.counting_proxy import counting_proxy
from tests.waiting import wait_until


def test_it_creates_its_bucket_once(moto_endpoint: str) -> None:
    first = make_s3_backend(moto_endpoint)
    again = S3Backend(
        endpoint=moto_endpoint,
        access_key="testing",
        secret_key="testing",
        bucket=first.bucket,
        secure=False,
        region="us-east-1",
    )

    first.save("acme/k", io.BytesIO(b"x"))

    assert again.read_bytes("acme/k") == b"x"


def test_it_downloads_through_a_presigned_url(s3_backend: S3Backend) -> None:
    s3_backend.save("acme/opinions/o1", io.BytesIO(b"%PDF-1.7 opinion"))

    url = s3_backend.signed_url("acme/opinions/o1", expires=timedelta(minutes=5), filename="opinion.pdf")
    with urllib.request.urlopen(url) as response:
        body = response.read()
        disposition = response.headers["Content-Disposition"]

    assert body == b"%PDF-1.7 opinion"
    assert disposition == 'attachment; filename="opinion.pdf"'


def test_it_uploads_through_a_presigned_put_url(s3_backend: S3Backend) -> None:
    url = s3_backend.presigned_put_url("acme/uploads/u1", expires=timedelta(minutes=5))
    assert url is not None

    request = urllib.request.Request(
        url,
        data=b"direct upload",
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    assert s3_backend.read_bytes("acme/uploads/u1") == b"direct upload"


def test_it_signs_urls_for_the_requested_lifetime_only(s3_backend: S3Backend) -> None:
    # moto does not enforce X-Amz-Expires, so this checks what a real S3 / MinIO enforces: the
    # signed lifetime and start. The signature covers both, so a client cannot extend them.
    before = datetime.now(UTC).replace(microsecond=0)
    url = s3_backend.signed_url("acme/k", expires=timedelta(minutes=5))

    query = parse_qs(urlsplit(url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert query["X-Amz-Expires"] == ["300"]
    assert before <= signed_at <= datetime.now(UTC)
    assert "X-Amz-Signature" in query


@pytest.mark.skipif(
    not os.environ.get("STORAGE_TEST_S3_ENDPOINT"),
    reason="moto does not check presigned URLs; set STORAGE_TEST_S3_* to run against MinIO",
)
def test_it_refuses_an_expired_presigned_url_on_a_real_server() -> None:
    backend = S3Backend(
        endpoint=os.environ["STORAGE_TEST_S3_ENDPOINT"],
        access_key=os.environ["STORAGE_TEST_S3_ACCESS_KEY"],
        secret_key=os.environ["STORAGE_TEST_S3_SECRET_KEY"],
        bucket=f"test-{uuid.uuid4().hex[:12]}",
        secure=os.environ.get("STORAGE_TEST_S3_SECURE") == "1",
        region=os.environ.get("STORAGE_TEST_S3_REGION", "us-east-1"),
    )
    backend.save("acme/k", io.BytesIO(b"secret"))
    url = backend.signed_url("acme/k", expires=timedelta(seconds=5))
    with urllib.request.urlopen(url) as response:  # good until it expires
        assert response.read() == b"secret"

    def refused() -> int:
        try:
            urllib.request.urlopen(url).close()
        except urllib.error.HTTPError as error:
            return error.code
        return 0

    assert wait_until(refused, timeout=20, message="the signed URL never expired") == 403
    backend.delete_prefix("acme")


def test_it_releases_the_connection_when_a_reader_is_closed_early(s3_backend: S3Backend) -> None:
    s3_backend.save("acme/k", io.BytesIO(b"x" * 100_000))

    for _ in range(20):  # more than the pool holds: a leaked connection would block or fail
        with s3_backend.open("acme/k") as reader:
            assert reader.read(10) == b"x" * 10

    assert s3_backend.read_bytes("acme/k") == b"x" * 100_000


def test_it_encrypts_at_rest_by_default_when_asked(moto_endpoint: str) -> None:
    plain = make_s3_backend(moto_endpoint)
    assert plain.bucket_encryption() is None
    encrypted = S3Backend(
        endpoint=moto_endpoint,
        access_key="testing",
        secret_key="testing",
        bucket=plain.bucket,
        secure=False,
        region="us-east-1",
        encrypt=True,
    )
    assert encrypted.bucket_encryption() == "AES256"


def test_it_fetches_only_the_range_it_reads(moto_endpoint: str) -> None:
    with counting_proxy(moto_endpoint) as proxy:
        backend = make_s3_backend(proxy.address)
        backend.save("acme/big", io.BytesIO(os.urandom(8 * 1024 * 1024)))
        proxy.reset()

        piece = backend.read_range("acme/big", 5 * 1024 * 1024, 1000)

        assert len(piece) == 1000
        assert proxy.received < 1000 + 2048  # the range and one response's headers
