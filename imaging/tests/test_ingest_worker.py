"""The ingest task on a real Celery worker over the real broker, in the institution's schema:
a whole CD in a zip becomes studies with exact counts and previews, and a second delivery of
the task does nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import schema_context

from accounts.models import User
from imaging.models import Instance, Series, Study, Upload
from imaging.tasks import upload_ingest
from imaging.tests.fixtures.ingest import cd_zip, upload_make
from intake.models import Case
from storage.tenant import tenant_storage
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.worker]


@pytest.fixture(scope="module")
def committed_upload(django_db_setup: None, django_db_blocker: Any) -> Iterator[Upload]:
    """A case with a received zip of a CD, committed so the worker (another process) sees it."""
    with django_db_blocker.unblock(), schema_context("neuro"):
        owner = User.objects.get(email="patient@neuro.example.com")
        case = Case.objects.create(owner=owner)
        upload = upload_make(case, cd_zip(), path="cd.zip")
    yield upload
    with django_db_blocker.unblock(), schema_context("neuro"):
        storage = tenant_storage()
        for prefix in ("uploads", "dicom", "previews"):
            storage.delete_prefix(f"{prefix}/{case.public_id}")
        Case.objects.filter(pk=case.pk).delete()


def test_it_ingests_a_cd_on_the_worker_in_the_right_schema(
    celery_worker_process: subprocess.Popen[Any],
    committed_upload: Upload,
) -> None:
    upload = committed_upload
    with schema_context("neuro"):
        upload_ingest.delay(upload.pk)
        upload_ingest.delay(upload.pk)  # delivered twice: the second claim fails, harmlessly

        def done() -> bool:
            return Upload.objects.get(pk=upload.pk).status == Upload.Status.DONE

        wait_until(done, timeout=60, message="the worker did not finish the ingest")
        studies = Study.objects.filter(case=upload.case)
        assert studies.count() == 6
        assert sum(studies.values_list("instance_count", flat=True)) == 31
        assert Instance.objects.filter(series__study__case=upload.case).count() == 31
        series = Series.objects.filter(study__case=upload.case)
        # Previews come from a debounced task of their own, a few seconds later.
        wait_until(
            lambda: not series.filter(preview_key="").exists(), timeout=30, message="no previews drawn"
        )
        assert all(tenant_storage().exists(key) for key in series.values_list("preview_key", flat=True))
    with schema_context("cancer"):
        assert not Upload.objects.filter(storage_key=upload.storage_key).exists()
