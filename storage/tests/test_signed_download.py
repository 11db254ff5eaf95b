"""Signed download links of the filesystem backend: tokens and the view that honours them."""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.http import FileResponse
from django.test import RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper

from storage.filesystem import FilesystemBackend
from storage.tenant import TenantStorage
from storage.tokens import (
    DownloadTokenExpired,
    DownloadTokenInvalid,
    download_token_mint,
    download_token_read,
)
from storage.views import (
    EXPIRED_LINK_MESSAGE,
    INVALID_LINK_MESSAGE,
    MISSING_FILE_MESSAGE,
    WRONG_SITE_MESSAGE,
    signed_download,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KEY = "acme/opinions/0b7e1c8e6f1d4c2a"


@pytest.fixture
def files(settings: SettingsWrapper, tmp_path: Path) -> FilesystemBackend:
    """The configured backend, holding one opinion of tenant "acme"."""
    settings.STORAGE_BACKEND = "filesystem"
    settings.STORAGE_FILESYSTEM_ROOT = tmp_path
    backend = FilesystemBackend(tmp_path)
    backend.save(KEY, io.BytesIO(b"%PDF-1.7 opinion"))
    return backend


@pytest.fixture
def on_acme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests are served on acme's site (django-tenants sets the connection's schema)."""
    monkeypatch.setattr(connection, "schema_name", "acme", raising=False)


def _get(token: str) -> FileResponse:
    request = RequestFactory().get(f"/files/signed/{token}")
    return signed_download(request, token)  # type: ignore[return-value]


def test_it_reads_back_what_it_minted() -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5), filename="a.pdf", now=NOW)

    grant = download_token_read(token, now=NOW + timedelta(minutes=4))

    assert grant.key == KEY
    assert grant.filename == "a.pdf"
    assert grant.expires_at == NOW + timedelta(minutes=5)


def test_it_refuses_an_expired_token() -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5), now=NOW)

    with pytest.raises(DownloadTokenExpired):
        download_token_read(token, now=NOW + timedelta(minutes=5))


@pytest.mark.parametrize("tamper", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: "x" + t])
def test_it_refuses_a_tampered_token(tamper: object) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5))

    with pytest.raises(DownloadTokenInvalid):
        download_token_read(tamper(token))  # type: ignore[operator]


def test_it_refuses_a_token_signed_with_another_secret(settings: SettingsWrapper) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5))
    settings.SECRET_KEY = "another deployment"

    with pytest.raises(DownloadTokenInvalid):
        download_token_read(token)


@pytest.mark.urls("storage.tests.urls")
def test_it_mints_a_url_to_the_view(files: FilesystemBackend) -> None:
    url = files.signed_url(KEY, expires=timedelta(minutes=5), filename="opinion.pdf")

    assert url.startswith("/files/signed/")
    assert download_token_read(url.removeprefix("/files/signed/")).key == KEY


@pytest.mark.urls("storage.tests.urls")
def test_it_mints_tenant_urls_for_full_keys(files: FilesystemBackend) -> None:
    url = TenantStorage(files, "acme").signed_url("opinions/0b7e1c8e6f1d4c2a", expires=timedelta(1))

    assert download_token_read(url.removeprefix("/files/signed/")).key == KEY


def test_it_streams_the_file(files: FilesystemBackend, on_acme: None) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5), filename="opinion.pdf")

    response = _get(token)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.7 opinion"  # type: ignore[arg-type]
    assert response["Content-Disposition"] == 'attachment; filename="opinion.pdf"'
    assert response["Content-Length"] == "16"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    response.file_to_stream.close()  # type: ignore[union-attr]  # not response.close(): that signals request_finished


def test_it_refuses_an_expired_link(files: FilesystemBackend, on_acme: None) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5), now=NOW)

    response = _get(token)

    assert response.status_code == 410
    assert response.content.decode() == EXPIRED_LINK_MESSAGE


def test_it_refuses_a_tampered_link(files: FilesystemBackend, on_acme: None) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5))

    response = _get(token[:-2] + "xx")

    assert response.status_code == 403
    assert response.content.decode() == INVALID_LINK_MESSAGE


def test_it_refuses_a_link_of_another_tenant(
    files: FilesystemBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5))
    monkeypatch.setattr(connection, "schema_name", "zenith", raising=False)

    response = _get(token)

    assert response.status_code == 403
    assert response.content.decode() == WRONG_SITE_MESSAGE


def test_it_answers_404_for_a_deleted_file(files: FilesystemBackend, on_acme: None) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5))
    files.delete(KEY)

    response = _get(token)

    assert response.status_code == 404
    assert response.content.decode() == MISSING_FILE_MESSAGE


def test_it_refuses_other_methods(files: FilesystemBackend, on_acme: None) -> None:
    token = download_token_mint(key=KEY, expires=timedelta(minutes=5))

    response = signed_download(RequestFactory().post(f"/files/signed/{token}"), token)

    assert response.status_code == 405
