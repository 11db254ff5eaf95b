"""Tenant-scoped storage: the only entry point application code should use for files."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from io import BufferedReader
from typing import Any, BinaryIO

from django.db import connection

from storage.backends import get_backend
from storage.base import ObjectReader, StorageBackend, StorageUnavailable, storage_unavailable
from storage.keys import InvalidKey, join, validate_key, validate_prefix

# django-tenants adds schema_name to the connection at run time; the stubs do not know it.
_tenant_connection: Any = connection


@contextmanager
def _unavailable_raised() -> Iterator[None]:
    """Turn the backend's infrastructure errors into :class:`StorageUnavailable` (still an
    ``OSError``), so callers can tell "the storage failed, try later" from "no such object"."""
    try:
        yield
    except StorageUnavailable:
        raise
    except Exception as exc:
        if not storage_unavailable(exc):
            raise
        unavailable = StorageUnavailable(f"storage failed: {type(exc).__name__}")
        unavailable.errno = getattr(exc, "errno", None)
        raise unavailable from exc


class TenantStorage:
    """A backend seen through one tenant's folder: every key is stored as ``<schema>/<key>``.

    Keys given to and returned by these methods are relative to the tenant folder. Because the
    schema is always the first segment and keys may not contain ``..``, no key of one tenant can
    reach another tenant's objects. The public schema is a tenant like any other here (``public/``
    holds platform files, such as logos of institutions awaiting approval).
    """

    def __init__(self, backend: StorageBackend, schema_name: str) -> None:
        """Precondition: ``schema_name`` is a real schema name (one segment, no leading ``_``)."""
        validate_key(schema_name)
        # A leading "_" is refused so that no tenant folder can collide with the backend's own
        # folders, such as HEALTH_PREFIX.
        if "/" in schema_name or schema_name.startswith("_"):
            raise InvalidKey("Not a usable schema name for storage.")
        self.backend = backend
        self.schema_name = schema_name

    def key(self, key: str) -> str:
        """The backend key for a tenant-relative ``key`` (validated)."""
        return f"{self.schema_name}/{validate_key(key)}"

    def _prefix(self, prefix: str) -> str:
        return join(self.schema_name, validate_prefix(prefix))

    def save(self, key: str, stream: BinaryIO, length: int | None = None) -> int:
        """See :meth:`StorageBackend.save`."""
        with _unavailable_raised():
            return self.backend.save(self.key(key), stream, length)

    def open(self, key: str) -> ObjectReader:
        """See :meth:`StorageBackend.open`."""
        with _unavailable_raised():
            return self.backend.open(self.key(key))

    def read_bytes(self, key: str) -> bytes:
        """See :meth:`StorageBackend.read_bytes` (small objects only)."""
        with _unavailable_raised():
            return self.backend.read_bytes(self.key(key))

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """See :meth:`StorageBackend.read_range`."""
        with _unavailable_raised():
            return self.backend.read_range(self.key(key), offset, length)

    def open_range(self, key: str, offset: int, length: int) -> ObjectReader:
        """See :meth:`StorageBackend.open_range`."""
        with _unavailable_raised():
            return self.backend.open_range(self.key(key), offset, length)

    def open_seekable(
        self, key: str, *, buffer_size: int = 64 * 1024, offset: int = 0, length: int | None = None
    ) -> BufferedReader:
        """See :meth:`StorageBackend.open_seekable` (its reads may raise StorageUnavailable
        unconverted: the caller reads after this returns)."""
        with _unavailable_raised():
            return self.backend.open_seekable(
                self.key(key), buffer_size=buffer_size, offset=offset, length=length
            )

    def move(self, src_key: str, dst_key: str) -> None:
        """See :meth:`StorageBackend.move` (both keys inside this tenant's folder)."""
        with _unavailable_raised():
            self.backend.move(self.key(src_key), self.key(dst_key))

    def exists(self, key: str) -> bool:
        with _unavailable_raised():
            return self.backend.exists(self.key(key))

    def size(self, key: str) -> int:
        with _unavailable_raised():
            return self.backend.size(self.key(key))

    def delete(self, key: str) -> None:
        with _unavailable_raised():
            self.backend.delete(self.key(key))

    def delete_prefix(self, prefix: str) -> int:
        """Delete the folder ``prefix``; ``""`` deletes every file of the tenant."""
        with _unavailable_raised():
            return self.backend.delete_prefix(self._prefix(prefix))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield tenant-relative keys under the folder ``prefix``."""
        strip = len(self.schema_name) + 1
        for key in self.backend.list_keys(self._prefix(prefix)):
            yield key[strip:]

    def total_size(self, prefix: str = "") -> int:
        return self.backend.total_size(self._prefix(prefix))

    def multipart_start(self, key: str) -> str:
        """See :meth:`StorageBackend.multipart_start` (parts but the last are >= 5 MiB)."""
        with _unavailable_raised():
            return self.backend.multipart_start(self.key(key))

    def multipart_put(self, key: str, upload_id: str, part_number: int, stream: BinaryIO, length: int) -> str:
        with _unavailable_raised():
            return self.backend.multipart_put(self.key(key), upload_id, part_number, stream, length)

    def multipart_complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        with _unavailable_raised():
            return self.backend.multipart_complete(self.key(key), upload_id, parts)

    def multipart_abort(self, key: str, upload_id: str) -> None:
        with _unavailable_raised():
            self.backend.multipart_abort(self.key(key), upload_id)

    def signed_url(self, key: str, *, expires: timedelta, filename: str | None = None) -> str:
        """See :meth:`StorageBackend.signed_url`: ``filename`` must not identify the patient."""
        return self.backend.signed_url(self.key(key), expires=expires, filename=filename)

    def presigned_put_url(self, key: str, *, expires: timedelta) -> str | None:
        return self.backend.presigned_put_url(self.key(key), expires=expires)


def tenant_storage(schema_name: str | None = None) -> TenantStorage:
    """Storage for ``schema_name``, by default the schema of the current connection.

    Precondition for the default: the connection is set to the right tenant (inside a tenant
    request, or inside ``tenant_context`` / a tenant-aware Celery task).
    """
    return TenantStorage(get_backend(), schema_name or connection_schema_name())


def connection_schema_name() -> str:
    """The schema the connection is on (tenants.schema.current_schema_name, which storage, below
    tenants in the layers, cannot import)."""
    return str(_tenant_connection.schema_name)
