"""The DICOM metadata cache is bounded: entries are compressed and expire; an entry written by an
older release (uncompressed) is made again instead of breaking the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django_tenants.utils import schema_context

from imaging.dicomweb.selectors import instance_metadata_bytes
from imaging.models import Instance
from tenants.models import Institution
from tests.dicomweb_cases import case_with_study, demo_study


@pytest.fixture
def redis_cache() -> Iterator[None]:
    """The real cache backend of production (the test settings use local memory)."""
    real = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.CACHE_URL,
            "KEY_PREFIX": f"test-{settings.TEST_RUN}",
            "KEY_FUNCTION": "django_tenants.cache.make_key",
            "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        }
    }
    with override_settings(CACHES=real, DICOM_METADATA_CACHE_SECONDS=600):
        yield
        cache.clear()


@pytest.mark.usefixtures("redis_cache")
def test_it_caches_compressed_metadata_that_expires(neuro: Institution) -> None:
    _, series = demo_study(ct_slices=2)
    case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=series)
    with schema_context("neuro"):
        instance = Instance.objects.order_by("-id").first()
        assert instance is not None
        made = instance_metadata_bytes(instance)
        key = f"dicomweb:metadata:{instance.storage_key}"
        stored = cache.get(key)
        assert len(stored) < len(made) / 2  # compressed
        client = cache._cache.get_client(key)  # type: ignore[attr-defined]
        ttl = client.ttl(cache.make_and_validate_key(key))
        assert 0 < ttl <= 600
        assert instance_metadata_bytes(instance) == made  # from the cache
        assert json.loads(made)["00020010"]  # the transfer syntax is in the answer

        cache.set(key, made, 600)  # as an older release wrote it: not compressed
        assert instance_metadata_bytes(instance) == made
        assert len(cache.get(key)) < len(made) / 2
