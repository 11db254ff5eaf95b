"""An image's stored bytes, wherever they lie. Every reader of an instance's file goes through here.

Most instances have a file of their own under ``storage_key``. An image that came in a folder
drop's batch (an uncompressed tar the browser packed, imaging.ingest.tar) and needed no change is
not copied out of it: it stays where it lies in the batch's bytes, which are kept whole, and its
instance names that object with ``storage_offset`` (where the file starts, never 0: a tar header
comes first) and ``size`` (its length). Writing every image a second time cost the worker as
much as everything else it does for a batch, and twice the disk traffic.

So ``storage_offset == 0`` means "the whole object"; anything else, the range
``[storage_offset, storage_offset + size)`` of it. The object is never rewritten once an
instance points into it, and it is deleted only with the case (its folder goes whole).
"""

from __future__ import annotations

from io import BufferedReader
from typing import Protocol

from storage.base import ObjectReader
from storage.tenant import TenantStorage, tenant_storage


class StoredImage(Protocol):
    """What locates an image's bytes: an :class:`~imaging.models.Instance` (or the fields of it)."""

    storage_key: str
    storage_offset: int
    size: int


def instance_in_batch(instance: StoredImage) -> bool:
    """Whether the image lies inside a bigger object (its batch) rather than in a file of its own."""
    return instance.storage_offset > 0


def instance_file_open(instance: StoredImage, storage: TenantStorage | None = None) -> ObjectReader:
    """A reader of the image's file from its first byte to its last (seekable where the backend
    can seek: the filesystem can, object storage streams). The caller closes it."""
    storage = storage or tenant_storage()
    if instance_in_batch(instance):
        return storage.open_range(instance.storage_key, instance.storage_offset, instance.size)
    return storage.open(instance.storage_key)


def instance_file_open_seekable(
    instance: StoredImage, storage: TenantStorage | None = None
) -> BufferedReader:
    """A seekable reader of the image's file, whatever the backend (object storage: ranged reads
    as the reader seeks), for parsers that seek over files too large to fetch whole."""
    storage = storage or tenant_storage()
    if not instance_in_batch(instance):
        return storage.open_seekable(instance.storage_key)
    return storage.open_seekable(instance.storage_key, offset=instance.storage_offset, length=instance.size)


def instance_file_read_range(
    instance: StoredImage, offset: int, length: int, storage: TenantStorage | None = None
) -> bytes:
    """``length`` bytes of the image's file from ``offset`` (fewer where the file ends sooner)."""
    storage = storage or tenant_storage()
    if not instance_in_batch(instance):
        return storage.read_range(instance.storage_key, offset, length)
    length = max(0, min(length, instance.size - offset))
    return storage.read_range(instance.storage_key, instance.storage_offset + offset, length)


def instance_file_read(instance: StoredImage, storage: TenantStorage | None = None) -> bytes:
    """The whole file in memory: one image (a slice is 0.1-2 MB; callers decode it anyway)."""
    with instance_file_open(instance, storage) as reader:
        return reader.read()


def instance_file_size(instance: StoredImage, storage: TenantStorage | None = None) -> int:
    """The file's length in bytes."""
    if instance_in_batch(instance):
        return instance.size
    return (storage or tenant_storage()).size(instance.storage_key)


def instance_file_identity(instance: StoredImage) -> str:
    """A name for the image's bytes, the same for as long as they exist (for caches of what is
    derived from them): images of one batch share a key, not a place in it."""
    if instance_in_batch(instance):
        return f"{instance.storage_key}@{instance.storage_offset}"
    return instance.storage_key
