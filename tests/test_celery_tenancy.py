"""A task runs in the schema of the institution it was queued from, on a real worker over the
real broker: shown with a product task, the expiry of abandoned uploads, which finds and
changes only the rows of its own institution; and beat's sweep of it, published from the public
schema, reaches every live institution and passes over drafts (an institution still in its
sign-up wizard has no schema yet)."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from imaging.models import Upload
from intake.models import Case
from intake.tus.tasks import uploads_expire, uploads_expire_all
from tenants.models import Institution
from tenants.schema import activate_institution, activate_public
from tenants.selectors import institution_schemas_live
from tests.live import committed
from tests.waiting import wait_until

pytestmark = pytest.mark.worker

LIVE = ("neuro", "cancer")


def _abandoned_upload(schema: str) -> tuple[int, int]:
    """An upload left unfinished past its expiry, in ``schema``: (case id, upload id)."""
    with schema_context(schema):
        owner = User.objects.get(email=f"patient@{schema}.example.com")
        case = Case.objects.create(owner=owner)
        upload = Upload.objects.create(
            case=case,
            owner=owner,
            length=10,
            storage_key=f"uploads/{case.public_id}/abandoned",
            expires_at=timezone.now() - timedelta(minutes=1),
        )
        return case.pk, upload.pk


def _cases_delete(made: dict[str, tuple[int, int]]) -> None:
    for schema, (case_id, _) in made.items():
        with schema_context(schema):
            Case.objects.filter(pk=case_id).delete()


@pytest.fixture
def abandoned_uploads() -> Iterator[dict[str, int]]:
    """In each demo institution, an upload left unfinished past its expiry (committed)."""
    made = {schema: committed(functools.partial(_abandoned_upload, schema)) for schema in LIVE}
    yield {schema: upload_id for schema, (_, upload_id) in made.items()}
    committed(functools.partial(_cases_delete, made))


def _draft_create() -> int:
    return Institution.objects.create(
        name="Draft Clinic", slug="draft-clinic", schema_name="draft_clinic", status=Institution.Status.DRAFT
    ).pk


def _draft_delete(pk: int) -> None:
    Institution.objects.filter(pk=pk).delete()  # a row only: there is no schema to drop


@pytest.fixture
def draft_institution() -> Iterator[str]:
    """An institution in the sign-up wizard: a row in the public schema, no schema of its own."""
    pk = committed(_draft_create)
    yield "draft_clinic"
    committed(functools.partial(_draft_delete, pk))


def _status(schema: str, upload_id: int) -> str:
    with schema_context(schema):
        return str(Upload.objects.get(pk=upload_id).status)


def _queued_from(slug: str) -> int:
    activate_institution(Institution.objects.get(slug=slug))
    try:
        return int(uploads_expire.delay().get(timeout=30))
    finally:
        activate_public()


def test_it_runs_a_task_in_the_schema_it_was_queued_from(
    celery_worker_process: subprocess.Popen[Any], abandoned_uploads: dict[str, int]
) -> None:
    assert _queued_from("neuro") == 1
    assert _status("neuro", abandoned_uploads["neuro"]) == Upload.Status.EXPIRED
    assert _status("cancer", abandoned_uploads["cancer"]) == Upload.Status.RECEIVING  # not its schema


def test_it_keeps_tasks_of_two_institutions_apart(
    celery_worker_process: subprocess.Popen[Any], abandoned_uploads: dict[str, int]
) -> None:
    assert _queued_from("cancer") == 1
    assert _status("neuro", abandoned_uploads["neuro"]) == Upload.Status.RECEIVING
    assert _queued_from("neuro") == 1
    assert _queued_from("cancer") == 0  # its one upload was expired by the first task, in its schema
    assert {schema: _status(schema, upload_id) for schema, upload_id in abandoned_uploads.items()} == {
        "neuro": Upload.Status.EXPIRED,
        "cancer": Upload.Status.EXPIRED,
    }


def test_it_sweeps_every_live_institution_and_passes_over_drafts(
    celery_worker_process: subprocess.Popen[Any], abandoned_uploads: dict[str, int], draft_institution: str
) -> None:
    live = institution_schemas_live()
    assert draft_institution not in live and set(LIVE) <= set(live) and "public" not in live

    # What beat sends, from the public schema: one task that walks the live institutions in
    # batches (tenants.sweeps), never into the draft's missing schema.
    uploads_expire_all.delay()
    for schema, upload_id in abandoned_uploads.items():
        wait_until(
            functools.partial(lambda s, u: _status(s, u) == Upload.Status.EXPIRED, schema, upload_id),
            timeout=30,
            message=f"the sweep did not reach {schema}",
        )


def test_a_task_whose_institution_is_gone_runs_nowhere(celery_worker_process: subprocess.Popen[Any]) -> None:
    # The worker could not switch to the schema (its institution was deleted while the task
    # waited): Celery logs the signal handler's error and went on, running the task in the
    # public schema. Now it is dropped (the same check retries it when the database was away).
    queued = uploads_expire.apply_async(headers={"_schema_name": "gone_clinic"})
    assert queued.get(timeout=30) is None
