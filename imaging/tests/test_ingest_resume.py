"""Uploads whose ingest task was lost, or whose worker died, are ingested after all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from imaging import tasks
from imaging.ingest.pipeline import upload_ingest_run, uploads_stalled_requeue
from imaging.models import Series, Upload
from imaging.tests.fixtures.ingest import case_make, dicom_renamed, upload_make
from intake.models import Case
from tenants.models import Institution


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Upload ids the sweep queues (the broker hand-off itself is Celery's)."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.upload_ingest, "delay", ids.append)
    return ids


def test_it_queues_one_task_per_case_for_stalled_uploads_and_they_ingest(
    case: Case, queued: list[int]
) -> None:
    uploads = [
        upload_make(case, dicom_renamed("CT_small.dcm", InstanceNumber=n), path=f"IM{n}") for n in (1, 2, 3)
    ]
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Upload.objects.filter(pk=uploads[0].pk).update(status=Upload.Status.INGESTING, updated=an_hour_ago)
    Upload.objects.filter(pk__in=[u.pk for u in uploads[1:]]).update(updated=an_hour_ago)  # RECEIVED, lost

    assert uploads_stalled_requeue() == 1
    (upload_id,) = queued
    upload_ingest_run(upload_id=upload_id)  # what the worker does with the queued task
    assert set(Upload.objects.filter(case=case).values_list("status", flat=True)) == {Upload.Status.DONE}
    assert Series.objects.get(study__case=case).instance_count == 3


def test_it_leaves_uploads_that_are_being_worked_on(case: Case, queued: list[int]) -> None:
    upload = upload_make(case, dicom_renamed("CT_small.dcm"), path="IM1")
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.INGESTING)  # just claimed
    assert uploads_stalled_requeue() == 0
    assert queued == []


def test_it_sweeps_every_live_institution_and_passes_over_drafts(
    neuro: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenants.selectors import institution_schemas_live

    Institution.objects.create(
        name="Draft Clinic", slug="draft-clinic", schema_name="draft_clinic", status=Institution.Status.DRAFT
    )
    # A draft whose go-live is under way (or was killed half-way): its schema exists, unfinished.
    Institution.objects.create(
        name="Half Clinic", slug="half-clinic", schema_name="half_clinic", status=Institution.Status.DRAFT
    )
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "half_clinic"')
    from tenants.schema import current_schema_name

    visited: list[str] = []
    monkeypatch.setattr(
        "imaging.ingest.pipeline.uploads_stalled_requeue", lambda: visited.append(current_schema_name())
    )
    live = institution_schemas_live()
    assert "draft_clinic" not in live and "half_clinic" not in live and "neuro" in live
    tasks.uploads_ingest_resume_all()  # one batch holds them all: no continuation queued
    assert sorted(visited) == sorted(live)
