"""Storage failing under an ingest (a full disk, an object store down) is ours, not the patient's:
the upload is not DONE, no file is called unreadable, nothing half-stored is left, staff see a
system problem, and once storage is back the retry ingests every file exactly once.

The disk is made full at the OS boundary: every fsync of the filesystem backend fails with
ENOSPC, as a real full disk reports it (the bytes may be in the page cache, not on disk)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from imaging.ingest import messages
from imaging.ingest.pipeline import (
    INGEST_STALE_AFTER,
    IngestHeartbeat,
    upload_ingest_run,
    uploads_stalled_requeue,
)
from imaging.models import FileProblem, Instance, Upload
from imaging.tasks import upload_ingest
from imaging.tests.fixtures.ingest import case_make, cd_zip, dicom_renamed, upload_make
from intake.models import Case
from intake.selectors import case_upload_overview
from storage.base import StorageUnavailable
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.queued import task_calls


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


@contextmanager
def disk_full(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def no_space(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", no_space)
        patched.setattr(os, "fdatasync", no_space)
        yield


def _stored_keys(case: Case) -> set[str]:
    return set(tenant_storage().list_keys(f"dicom/{case.public_id}"))


def test_it_keeps_the_upload_waiting_and_tells_staff_not_the_patient(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = upload_make(case, cd_zip(), path="cd.zip")
    with disk_full(monkeypatch), pytest.raises(StorageUnavailable):
        upload_ingest_run(upload_id=upload.pk)
    upload.refresh_from_db()
    # Not DONE, not FAILED: the patient's page counts it as still being checked.
    assert upload.status == Upload.Status.RECEIVED
    assert upload.system_problem == messages.STORAGE_FAILING
    # No file of theirs is called unreadable, no instance points at bytes that are not there,
    # and nothing half-stored is left behind.
    assert not FileProblem.objects.filter(case=case).exists()
    assert not Instance.objects.filter(series__study__case=case).exists()
    assert _stored_keys(case) == set()
    assert tenant_storage().exists(upload.storage_key)  # what the patient sent is intact


def test_it_ingests_every_file_once_when_storage_is_back(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    uploads = [
        upload_make(case, dicom_renamed("CT_small.dcm", InstanceNumber=n), path=f"IM{n}") for n in (1, 2, 3)
    ]
    with disk_full(monkeypatch), pytest.raises(StorageUnavailable):
        upload_ingest_run(upload_id=uploads[0].pk)
    assert set(Upload.objects.filter(case=case).values_list("status", flat=True)) == {Upload.Status.RECEIVED}

    upload_ingest_run(upload_id=uploads[0].pk)  # the task's retry, the disk freed meanwhile
    rows = Upload.objects.filter(case=case)
    assert set(rows.values_list("status", flat=True)) == {Upload.Status.DONE}
    assert set(rows.values_list("system_problem", flat=True)) == {""}
    instances = Instance.objects.filter(series__study__case=case)
    assert instances.count() == 3
    assert len(set(instances.values_list("sop_instance_uid", flat=True))) == 3
    assert _stored_keys(case) == set(instances.values_list("storage_key", flat=True))
    assert not FileProblem.objects.filter(case=case).exists()


def test_the_task_retries_with_backoff_and_leaves_the_upload_to_the_sweep(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zip: its images are copied out (a single file is renamed, which a full disk allows).
    upload = upload_make(case, cd_zip(), path="cd.zip")
    delays: list[float] = []
    real_retry = upload_ingest.retry

    def retry(*args: object, countdown: float, **kwargs: object) -> object:
        delays.append(countdown)
        return real_retry(*args, countdown=0, **kwargs)  # eager: runs again at once

    monkeypatch.setattr(upload_ingest, "retry", retry)
    with disk_full(monkeypatch):
        upload_ingest.apply((upload.pk,))
    upload.refresh_from_db()
    assert upload.status == Upload.Status.RECEIVED and upload.system_problem
    assert len(delays) == 8 and delays[-1] > delays[0]  # retried, each time later

    # Past its retries the upload waits for the sweep, which queues it every few minutes.
    Upload.objects.filter(pk=upload.pk).update(updated=timezone.now() - INGEST_STALE_AFTER * 2)
    queued = task_calls(monkeypatch, upload_ingest)
    assert uploads_stalled_requeue() == 1
    assert queued == [(upload.pk,)]


def test_an_upload_whose_worker_died_is_taken_again_within_minutes(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = upload_make(case, dicom_renamed("CT_small.dcm", InstanceNumber=1), path="IM1")
    busy = upload_make(case, dicom_renamed("CT_small.dcm", InstanceNumber=2), path="IM2")
    now = timezone.now()
    Upload.objects.filter(pk=dead.pk).update(
        status=Upload.Status.INGESTING, updated=now - timedelta(minutes=4)
    )
    # Its heartbeat is a minute old: its worker is alive, working on a large file.
    Upload.objects.filter(pk=busy.pk).update(
        status=Upload.Status.INGESTING, updated=now - timedelta(minutes=1)
    )
    queued = task_calls(monkeypatch, upload_ingest)
    assert timedelta(minutes=5) >= INGEST_STALE_AFTER
    assert uploads_stalled_requeue() == 1
    assert queued == [(dead.pk,)]


def test_the_heartbeat_keeps_an_upload_being_ingested_fresh(case: Case) -> None:
    upload = upload_make(case, dicom_renamed("CT_small.dcm"), path="IM1")
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.INGESTING, updated=an_hour_ago)
    heartbeat = IngestHeartbeat([upload.pk])
    heartbeat.beat()
    upload.refresh_from_db()
    assert upload.updated > an_hour_ago + timedelta(minutes=59)
    # Finished uploads are left alone.
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.DONE, updated=an_hour_ago)
    heartbeat.beat()
    upload.refresh_from_db()
    assert upload.updated == an_hour_ago


def test_staff_see_a_system_problem_while_the_patient_reads_still_being_checked(
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = make_case()
    with tenant_context(neuro):
        upload = upload_make(case, cd_zip(), path="cd.zip")
        with disk_full(monkeypatch), pytest.raises(StorageUnavailable):
            upload_ingest_run(upload_id=upload.pk)
        overview = case_upload_overview(case=case)
    assert overview["uploads"]["processing"] >= 1
    assert not overview["problems"]
    page = staff_client("coordinator").get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert "System problem: " + messages.STORAGE_FAILING in page.replace("&#x27;", "'")
    assert "(1 file waiting)" in page
