"""Folder drops: one upload per file, each with its own task; the first task to run claims a
batch of the case's waiting uploads and ingests them together, the others find nothing to do.
Every upload still ends DONE or FAILED with its own problems, and raw bytes are kept only where
staff may need them."""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from imaging.ingest import messages
from imaging.ingest.pdf_safety import report_original_key
from imaging.ingest.pipeline import IngestOutcome, batch, claim, index, unpack, upload_ingest_run
from imaging.models import FileProblem, Instance, Report, Series, Study, Upload
from imaging.tests.fixtures.ingest import (
    PROGRAM,
    case_make,
    dicom_renamed,
    nested_sequences,
    report_pdf,
    sample,
    upload_make,
    with_preamble,
    zip_bytes,
)
from intake.models import Case
from storage.base import StorageError
from storage.tenant import TenantStorage, tenant_storage
from tenants.models import Institution


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def _series_files(count: int) -> list[bytes]:
    """``count`` slices of one CT series, as a CD's folder holds them."""
    return [dicom_renamed("CT_small.dcm", InstanceNumber=number) for number in range(1, count + 1)]


def _raw_kept(upload: Upload) -> bool:
    return tenant_storage().exists(upload.storage_key)


def _status(upload: Upload) -> str:
    upload.refresh_from_db()
    return upload.status


def test_it_ingests_a_folder_drop_with_the_first_task_and_the_others_find_nothing(case: Case) -> None:
    uploads = [upload_make(case, data, path=f"DICOM/IM{n}") for n, data in enumerate(_series_files(6))]
    outcome = upload_ingest_run(upload_id=uploads[0].pk)
    assert outcome is not None and outcome.accepted == 6
    assert set(outcome.uploads) == {upload.pk for upload in uploads}
    for upload in uploads[1:]:
        assert upload_ingest_run(upload_id=upload.pk) is None  # its own task: already done
    assert all(_status(upload) == Upload.Status.DONE for upload in uploads)
    series = Series.objects.get(study__case=case)
    assert series.instance_count == 6
    assert Study.objects.get(case=case).instance_count == 6
    assert Instance.objects.filter(series=series).count() == 6
    # Each instance remembers the upload it came from.
    assert set(Instance.objects.filter(series=series).values_list("upload_id", flat=True)) == {
        upload.pk for upload in uploads
    }
    assert not FileProblem.objects.filter(case=case).exists()


def test_it_keeps_every_good_file_of_a_batch_beside_hostile_ones(case: Case) -> None:
    good = _series_files(3)
    cut_short = sample("CT_small.dcm")[:5_000]
    polyglot = with_preamble(dicom_renamed("CT_small.dcm"), PROGRAM[:128])
    uploads = {
        "good1": upload_make(case, good[0], path="DICOM/IM1"),
        "program": upload_make(case, PROGRAM * 10, path="DICOM/IM2.dcm"),
        "truncated": upload_make(case, cut_short, path="DICOM/IM3"),
        "good2": upload_make(case, good[1], path="DICOM/IM4"),
        "nested": upload_make(case, nested_sequences(dicom_renamed("CT_small.dcm"), 500), path="DICOM/IM5"),
        "empty": upload_make(case, b"", path="DICOM/IM6"),
        "polyglot": upload_make(case, polyglot, path="DICOM/IM7"),
        "again": upload_make(case, good[0], path="DICOM/IM8"),  # the same image a second time
        "good3": upload_make(case, good[2], path="DICOM/IM9"),
        # An instance number no database column holds: kept without it, the batch unharmed.
        "huge": upload_make(case, dicom_renamed("CT_small.dcm", InstanceNumber="99999999999"), path="X"),
    }
    upload_ingest_run(upload_id=uploads["good1"].pk)

    status = {name: _status(upload) for name, upload in uploads.items()}
    assert status == {
        "good1": Upload.Status.DONE,
        "program": Upload.Status.FAILED,
        "truncated": Upload.Status.FAILED,
        "good2": Upload.Status.DONE,
        "nested": Upload.Status.FAILED,
        "empty": Upload.Status.FAILED,
        "polyglot": Upload.Status.DONE,  # kept, its preamble cleared
        "again": Upload.Status.DONE,  # stored once: nothing is wrong
        "good3": Upload.Status.DONE,
        "huge": Upload.Status.DONE,
    }
    # Each problem is on the upload it came from, in plain words.
    problems = {
        (upload_id, code, message)
        for upload_id, code, message in FileProblem.objects.filter(case=case).values_list(
            "upload_id", "code", "message"
        )
    }
    assert problems == {
        (uploads["program"].pk, "skipped_program", messages.PROGRAM_NOT_IMAGE),
        (uploads["truncated"].pk, "truncated", messages.TRUNCATED),
        (uploads["nested"].pk, "unreadable", messages.TOO_DEEPLY_NESTED),
        (uploads["empty"].pk, "empty", messages.EMPTY_FILE),
        (uploads["polyglot"].pk, "preamble_cleared", messages.PREAMBLE_CLEARED),
        (uploads["again"].pk, "duplicate", messages.DUPLICATE),
    }
    series = Series.objects.get(study__case=case)
    assert series.instance_count == 5  # three good slices, the cleared polyglot, the huge one
    assert len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) == 5
    assert Instance.objects.get(upload=uploads["huge"]).instance_number is None
    stored = tenant_storage().read_bytes(Instance.objects.get(upload=uploads["polyglot"]).storage_key)
    assert stored[:128] == b"\x00" * 128


def test_it_deletes_raw_bytes_once_stored_and_keeps_them_when_a_file_failed(case: Case) -> None:
    good = upload_make(case, sample("CT_small.dcm"), path="DICOM/IM1")
    bad = upload_make(case, b"not an image at all", path="DICOM/notes.bin")
    mixed_zip = upload_make(
        case, zip_bytes([("IM2", sample("MR_small.dcm")), ("IM3", b"garbage")]), path="cd.zip"
    )
    upload_ingest_run(upload_id=good.pk)
    assert _status(good) == Upload.Status.DONE and not _raw_kept(good)
    # Every image of it is stored under its own key: the raw copy would be a second one.
    assert tenant_storage().read_bytes(Instance.objects.get(upload=good).storage_key) == sample(
        "CT_small.dcm"
    )
    assert _status(bad) == Upload.Status.FAILED and _raw_kept(bad)  # staff can look at it
    # Done (its image is kept), but a file in it could not be taken: the zip stays too.
    assert _status(mixed_zip) == Upload.Status.DONE and _raw_kept(mixed_zip)


def test_it_keeps_a_report_once_and_a_refused_ones_raw_bytes(case: Case) -> None:
    pdf = report_pdf(["MRI brain, 2004-01-19"])
    report_upload = upload_make(case, pdf, path="report.pdf", kind="report", metadata={"filename": "r.pdf"})
    web_page = upload_make(case, b"<!doctype html><html>x</html>", path="x.pdf", kind="report")
    upload_ingest_run(upload_id=report_upload.pk)
    # Reports are claimed one at a time: the other report waits for its own task.
    assert _status(web_page) == Upload.Status.RECEIVED
    upload_ingest_run(upload_id=web_page.pk)
    report = Report.objects.get(upload=report_upload)
    # Staff read a copy rewritten without active content; the bytes sent are kept beside it.
    assert tenant_storage().read_bytes(report.storage_key).startswith(b"%PDF-")
    assert tenant_storage().read_bytes(report_original_key(report.storage_key)) == pdf
    assert _status(report_upload) == Upload.Status.DONE and not _raw_kept(report_upload)
    assert _status(web_page) == Upload.Status.FAILED and _raw_kept(web_page)


def test_it_claims_a_large_upload_alone(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claim, "CLAIM_BATCH_MAX_BYTES", 100_000)
    small = [upload_make(case, data, path=f"IM{n}") for n, data in enumerate(_series_files(2))]
    large = upload_make(
        case,
        zip_bytes([("IM9", sample("MR_small.dcm")), ("README.TXT", b"x" * 100_000)], zipfile.ZIP_STORED),
        path="cd.zip",
    )
    outcome = upload_ingest_run(upload_id=large.pk)
    assert outcome is not None and set(outcome.uploads) == {large.pk}
    assert [_status(upload) for upload in small] == [Upload.Status.RECEIVED] * 2
    outcome = upload_ingest_run(upload_id=small[0].pk)
    assert outcome is not None and set(outcome.uploads) == {upload.pk for upload in small}


def test_it_takes_back_a_batch_whose_worker_died(case: Case) -> None:
    uploads = [upload_make(case, data, path=f"IM{n}") for n, data in enumerate(_series_files(3))]
    # The worker claimed all three and died: they sit in INGESTING, their tasks long gone.
    Upload.objects.filter(case=case).update(
        status=Upload.Status.INGESTING, updated=timezone.now() - timedelta(hours=1)
    )
    outcome = upload_ingest_run(upload_id=uploads[0].pk)  # the redelivered task of the first
    assert outcome is not None and outcome.accepted == 3
    assert all(_status(upload) == Upload.Status.DONE for upload in uploads)
    assert Series.objects.get(study__case=case).instance_count == 3


class _WorkerKilled(BaseException):
    """The worker process dying (SIGKILL, out of memory): no cleanup of ours runs."""


def test_it_takes_back_files_a_dead_worker_had_moved_but_not_recorded(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _series_files(3)
    uploads = [upload_make(case, data, path=f"IM{n}") for n, data in enumerate(files)]
    real_flush = unpack.ImagingRun.flush

    def die_before_writing(run: unpack.ImagingRun) -> None:
        for pending in run.batch:  # the bytes reached their new keys, the instances never did
            if pending.saved is not None:
                pending.saved.result()
        raise _WorkerKilled

    monkeypatch.setattr(unpack.ImagingRun, "flush", die_before_writing)
    with pytest.raises(_WorkerKilled):
        upload_ingest_run(upload_id=uploads[0].pk)
    assert not any(_raw_kept(upload) for upload in uploads)  # moved, not copied
    monkeypatch.setattr(unpack.ImagingRun, "flush", real_flush)
    Upload.objects.filter(case=case).update(updated=timezone.now() - timedelta(hours=1))

    outcome = upload_ingest_run(upload_id=uploads[0].pk)

    assert outcome is not None and outcome.accepted == 3 and outcome.problems == 0
    assert all(_status(upload) == Upload.Status.DONE for upload in uploads)
    stored = {tenant_storage().read_bytes(i.storage_key) for i in Instance.objects.filter(upload__case=case)}
    assert stored == set(files)
    assert len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) == 3


def test_it_keeps_the_raw_bytes_of_a_file_it_could_not_store(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _series_files(2)
    uploads = [upload_make(case, data, path=f"IM{n}") for n, data in enumerate(files)]
    real_move = TenantStorage.move

    def storage_down_for_the_first(storage: TenantStorage, src_key: str, dst_key: str) -> None:
        if src_key == uploads[0].storage_key:
            raise StorageError("storage service unavailable")
        real_move(storage, src_key, dst_key)

    monkeypatch.setattr(TenantStorage, "move", storage_down_for_the_first)
    upload_ingest_run(upload_id=uploads[0].pk)

    assert _status(uploads[0]) == Upload.Status.FAILED
    assert tenant_storage().read_bytes(uploads[0].storage_key) == files[0]  # staff can look at it
    assert _status(uploads[1]) == Upload.Status.DONE and not _raw_kept(uploads[1])
    assert FileProblem.objects.get(upload=uploads[0]).message == messages.UNREADABLE
    assert len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) == 1


def test_it_fails_only_the_unsettled_uploads_when_the_database_fails_and_keeps_their_bytes(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "BATCH_SIZE", 2)
    uploads = [upload_make(case, data, path=f"IM{n}") for n, data in enumerate(_series_files(5))]
    real = index.counts_recompute
    calls = []

    def database_gone_on_the_second_batch(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        real(**kwargs)

    monkeypatch.setattr(index, "counts_recompute", database_gone_on_the_second_batch)
    outcome = upload_ingest_run(upload_id=uploads[0].pk)
    assert outcome is not None
    status = [_status(upload) for upload in uploads]
    # The first two were written; the batch of the next two was lost; the fifth was never read
    # in a batch that committed. Nothing lost: whatever failed keeps its raw bytes.
    assert status[:2] == [Upload.Status.DONE] * 2
    assert status[2:] == [Upload.Status.FAILED] * 3
    assert [_raw_kept(upload) for upload in uploads] == [False, False, True, True, True]
    assert Instance.objects.filter(series__study__case=case).count() == 2
    assert len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) == 2
    assert set(
        FileProblem.objects.filter(case=case, message=messages.UPLOAD_FAILED).values_list(
            "upload_id", flat=True
        )
    ) == {upload.pk for upload in uploads[2:]}


@pytest.fixture
def committed_folder(django_db_setup: None, django_db_blocker: Any) -> Iterator[tuple[Case, list[int]]]:
    """A case with 12 received single-file uploads of one series (and one duplicate), committed
    so that workers on their own connections see them."""
    with django_db_blocker.unblock(), schema_context("neuro"):
        owner = User.objects.get(email="patient@neuro.example.com")
        case = Case.objects.create(owner=owner)
        files = _series_files(12)
        ids = [upload_make(case, data, path=f"DICOM/IM{n}").pk for n, data in enumerate(files)]
        ids.append(upload_make(case, files[5], path="DICOM/COPY").pk)
    with django_db_blocker.unblock():
        yield case, ids
        with schema_context("neuro"):
            storage = tenant_storage()
            for prefix in ("uploads", "dicom", "previews"):
                storage.delete_prefix(f"{prefix}/{case.public_id}")
            Case.objects.filter(pk=case.pk).delete()


def test_it_ingests_each_file_exactly_once_when_two_workers_race(
    committed_folder: tuple[Case, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    case, ids = committed_folder
    # Small batches, so that both workers get some.
    monkeypatch.setattr(claim, "CLAIM_BATCH_UPLOADS", 3)
    start = threading.Barrier(2)
    outcomes: list[list[IngestOutcome]] = [[], []]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        # Each thread has its own database connection, as each Celery worker process does.
        try:
            with schema_context("neuro"):
                start.wait()
                # Every task reaches both workers, as with a redelivery; one worker starts from
                # the other end, so each has uploads to claim before the other can take them.
                for upload_id in ids if index == 0 else reversed(ids):
                    outcome = upload_ingest_run(upload_id=upload_id, previews_now=True)
                    if outcome is not None:
                        outcomes[index].append(outcome)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    claimed = [{upload_id for o in mine for upload_id in o.uploads} for mine in outcomes]
    assert claimed[0] and claimed[1]  # both workers did some of the work
    assert not claimed[0] & claimed[1]  # no upload was ingested by both
    assert claimed[0] | claimed[1] == set(ids)
    with schema_context("neuro"):
        series = Series.objects.get(study__case=case)
        assert series.instance_count == 12
        assert Instance.objects.filter(series=series).count() == 12
        assert (
            len(set(Instance.objects.filter(series=series).values_list("sop_instance_uid", flat=True))) == 12
        )
        assert len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) == 12
        assert set(Upload.objects.filter(case=case).values_list("status", flat=True)) == {Upload.Status.DONE}
        # The same image twice: whichever landed first stays, the other is the duplicate.
        problems = list(FileProblem.objects.filter(case=case).values_list("code", "path"))
        assert problems in ([("duplicate", "DICOM/COPY")], [("duplicate", "DICOM/IM5")])
        assert not list(tenant_storage().list_keys(f"uploads/{case.public_id}"))
