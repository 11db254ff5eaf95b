"""Tenant scoping: every key lives under its tenant's schema, and no key can leave it."""

import io
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from storage.backends import get_backend
from storage.base import StorageBackend
from storage.filesystem import FilesystemBackend
from storage.keys import InvalidKey
from storage.tenant import TenantStorage, tenant_storage


def test_it_prefixes_keys_with_the_schema(backend: StorageBackend) -> None:
    acme = TenantStorage(backend, "acme")

    acme.save("uploads/u1", io.BytesIO(b"scan"))

    assert backend.read_bytes("acme/uploads/u1") == b"scan"
    assert acme.read_bytes("uploads/u1") == b"scan"
    assert list(acme.list_keys()) == ["uploads/u1"]


def test_it_keeps_tenants_apart(backend: StorageBackend) -> None:
    acme, zenith = TenantStorage(backend, "acme"), TenantStorage(backend, "zenith")
    acme.save("uploads/u1", io.BytesIO(b"acme's scan"))
    zenith.save("uploads/u1", io.BytesIO(b"zenith's scan"))

    assert acme.read_bytes("uploads/u1") == b"acme's scan"
    assert zenith.read_bytes("uploads/u1") == b"zenith's scan"
    assert zenith.delete_prefix("") == 1
    assert acme.exists("uploads/u1")
    assert not zenith.exists("uploads/u1")


def test_it_moves_within_a_tenant_only(backend: StorageBackend) -> None:
    acme, zenith = TenantStorage(backend, "acme"), TenantStorage(backend, "zenith")
    acme.save("uploads/u1", io.BytesIO(b"acme's scan"))
    zenith.save("dicom/i1", io.BytesIO(b"zenith's image"))

    acme.move("uploads/u1", "dicom/i1")

    assert backend.read_bytes("acme/dicom/i1") == b"acme's scan"
    assert not acme.exists("uploads/u1")
    assert zenith.read_bytes("dicom/i1") == b"zenith's image"
    with pytest.raises(InvalidKey):
        acme.move("dicom/i1", "../zenith/dicom/i1")
    assert zenith.read_bytes("dicom/i1") == b"zenith's image"


@pytest.mark.parametrize(
    "key", ["../x", "/abs", "a//b", "a\\b", "../zenith/uploads/u1", ".multipart/x", "a\x00"]
)
def test_it_refuses_keys_that_could_escape(backend: StorageBackend, key: str) -> None:
    acme = TenantStorage(backend, "acme")

    with pytest.raises(InvalidKey):
        acme.save(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidKey):
        acme.read_bytes(key)
    with pytest.raises(InvalidKey):
        acme.delete_prefix(key)


@pytest.mark.parametrize("schema", ["", "a/b", "..", "_health", "_x", "a\\b"])
def test_it_refuses_unusable_schema_names(backend: StorageBackend, schema: str) -> None:
    with pytest.raises(InvalidKey):
        TenantStorage(backend, schema)


def test_it_allows_the_public_schema(backend: StorageBackend) -> None:
    TenantStorage(backend, "public").save("logos/pending-1", io.BytesIO(b"png"))

    assert list(backend.list_keys("public")) == ["public/logos/pending-1"]


def test_it_sums_a_tenants_usage(backend: StorageBackend) -> None:
    TenantStorage(backend, "acme").save("a", io.BytesIO(b"1234"))
    TenantStorage(backend, "acme").save("b/c", io.BytesIO(b"12"))
    TenantStorage(backend, "zenith").save("a", io.BytesIO(b"123456"))

    assert TenantStorage(backend, "acme").total_size() == 6


def test_it_scopes_multipart_uploads(backend: StorageBackend) -> None:
    acme = TenantStorage(backend, "acme")
    upload_id = acme.multipart_start("uploads/big")
    etag = acme.multipart_put("uploads/big", upload_id, 1, io.BytesIO(b"data"), 4)

    assert acme.multipart_complete("uploads/big", upload_id, [(1, etag)]) == 4
    assert backend.read_bytes("acme/uploads/big") == b"data"


def test_it_uses_the_connections_schema_by_default(
    settings: SettingsWrapper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.STORAGE_BACKEND = "filesystem"
    settings.STORAGE_FILESYSTEM_ROOT = tmp_path
    monkeypatch.setattr(connection, "schema_name", "acme", raising=False)

    tenant_storage().save("k", io.BytesIO(b"x"))

    assert (tmp_path / "acme" / "k").read_bytes() == b"x"
    assert tenant_storage("zenith").schema_name == "zenith"


def test_it_builds_the_backend_from_settings(settings: SettingsWrapper, tmp_path: Path) -> None:
    settings.STORAGE_BACKEND = "filesystem"
    settings.STORAGE_FILESYSTEM_ROOT = tmp_path / "one"
    first = get_backend()
    assert get_backend() is first
    settings.STORAGE_FILESYSTEM_ROOT = tmp_path / "two"  # resets the cache by itself

    second = get_backend()

    assert isinstance(second, FilesystemBackend)
    assert second.root == tmp_path / "two"


def test_it_builds_an_s3_backend_from_settings(settings: SettingsWrapper, moto_endpoint: str) -> None:
    settings.STORAGE_BACKEND = "s3"
    settings.S3_ENDPOINT = moto_endpoint
    settings.S3_ACCESS_KEY = "testing"
    settings.S3_SECRET_KEY = "testing"
    settings.S3_BUCKET = "from-settings"
    settings.S3_SECURE = False
    settings.S3_REGION = "us-east-1"

    assert get_backend().health_check() is True


def test_it_refuses_an_unknown_backend(settings: SettingsWrapper) -> None:
    settings.STORAGE_BACKEND = "ftp"

    with pytest.raises(ImproperlyConfigured):
        get_backend()
