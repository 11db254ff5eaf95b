"""The process-wide storage backend, chosen by settings.

Settings read: ``STORAGE_BACKEND`` ("filesystem" or "s3"), ``STORAGE_FILESYSTEM_ROOT``,
``S3_ENDPOINT``, ``S3_ACCESS_KEY``, ``S3_SECRET_KEY``, ``S3_BUCKET``, ``S3_SECURE``, ``S3_REGION``.
"""

import functools
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from storage.base import StorageBackend
from storage.filesystem import FilesystemBackend
from storage.s3 import S3Backend

__all__ = ["FilesystemBackend", "S3Backend", "StorageBackend", "get_backend", "reset_backend"]

_SETTINGS = {
    "STORAGE_BACKEND",
    "STORAGE_FILESYSTEM_ROOT",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET",
    "S3_SECURE",
    "S3_REGION",
    "S3_SSE",
}


@functools.cache
def get_backend() -> StorageBackend:
    """The backend configured in settings, built once per process.

    Cached because building the S3 backend checks (and may create) the bucket, and the minio
    client keeps a connection pool worth sharing. Call :func:`reset_backend` after changing the
    settings outside of Django's ``override_settings`` / pytest-django's ``settings`` fixture
    (those reset it by themselves).
    """
    kind = settings.STORAGE_BACKEND
    if kind == "filesystem":
        return FilesystemBackend(Path(settings.STORAGE_FILESYSTEM_ROOT))
    if kind == "s3":
        return S3Backend(
            endpoint=settings.S3_ENDPOINT,
            access_key=settings.S3_ACCESS_KEY,
            secret_key=settings.S3_SECRET_KEY,
            bucket=settings.S3_BUCKET,
            secure=settings.S3_SECURE,
            region=settings.S3_REGION,
            encrypt=settings.S3_SSE,
        )
    raise ImproperlyConfigured("STORAGE_BACKEND must be 'filesystem' or 's3'.")


def reset_backend() -> None:
    """Forget the cached backend; the next :func:`get_backend` call reads the settings again."""
    get_backend.cache_clear()


@receiver(setting_changed, dispatch_uid="storage.reset_backend")
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    # Tests override these settings; a stale cached backend would write to the wrong place.
    if setting in _SETTINGS:
        reset_backend()
