"""Ingest of real DICOM files: single files, a whole CD in a zip, previews, counts, duplicates."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, cast

import pydicom
import pytest
from django_tenants.utils import tenant_context
from PIL import Image
from pydicom.encaps import get_frame

from imaging.dicomweb.frames import StoredFile, frame_stored
from imaging.ingest import messages
from imaging.ingest.pipeline import upload_ingest_enqueue, upload_ingest_run
from imaging.ingest.preview import series_preview_ensure
from imaging.ingest.selectors import case_imaging_summary, case_ingest_progress, case_problems
from imaging.models import FileProblem, Instance, Series, Study, Upload
from imaging.tasks import upload_ingest
from imaging.tests.fixtures.ingest import (
    PROGRAM,
    case_make,
    cd_files,
    cd_zip,
    dicom_renamed,
    sample,
    upload_make,
    zip_bytes,
)
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.queued import task_calls


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def _ingest(case: Case, data: bytes, path: str = "IM000001", **kwargs: Any) -> Upload:
    upload = upload_make(case, data, path=path, **kwargs)
    upload_ingest_run(upload_id=upload.pk, previews_now=True)
    upload.refresh_from_db()
    return upload


def test_it_ingests_one_ct_file_with_the_metadata_reviewers_use(case: Case) -> None:
    upload = _ingest(case, sample("CT_small.dcm"))
    assert upload.status == Upload.Status.DONE
    study = Study.objects.get(case=case)
    assert str(study.study_date) == "2004-01-19"
    assert study.modalities == "CT"
    assert (study.series_count, study.instance_count) == (1, 1)
    assert study.patient_name_in_files == "CompressedSamples^CT1"
    instance = Instance.objects.get(series__study=study)
    assert (instance.rows, instance.columns, instance.number_of_frames) == (128, 128, 1)
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    # Stored under an opaque key, byte for byte (its preamble was clean).
    assert instance.storage_key.startswith(f"dicom/{case.public_id}/")
    assert "IM000001" not in instance.storage_key
    assert tenant_storage().read_bytes(instance.storage_key) == sample("CT_small.dcm")
    assert not FileProblem.objects.filter(case=case).exists()


def test_it_draws_a_windowed_preview_of_the_middle_slice(case: Case) -> None:
    _ingest(case, sample("MR_small.dcm"))
    series = Series.objects.get(study__case=case)
    png = Image.open(io.BytesIO(tenant_storage().read_bytes(series.preview_key)))
    assert png.format == "PNG" and png.size == (64, 64)
    low, high = cast(tuple[int, int], png.convert("L").getextrema())
    assert high - low > 100  # windowed into a visible range, not a black square
    assert series.preview_instance_count == 1


@pytest.mark.parametrize(
    "name",
    [
        "JPEG2000.dcm",
        "SC_rgb_rle.dcm",
        "JPGExtended.dcm",  # 12-bit lossy JPEG
        "SC_rgb_jpeg_dcmtk.dcm",
        "693_J2KI.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_it_draws_previews_of_compressed_images(case: Case, name: str) -> None:
    _ingest(case, sample(name))
    series = Series.objects.get(study__case=case)
    assert series.preview_key, name
    png = Image.open(io.BytesIO(tenant_storage().read_bytes(series.preview_key)))
    low, high = cast(tuple[int, int], png.convert("L").getextrema())
    assert high > low


def test_it_counts_the_frames_of_a_multiframe_image(case: Case) -> None:
    _ingest(case, sample("emri_small.dcm"))
    instance = Instance.objects.get(series__study__case=case)
    assert instance.number_of_frames == 10
    assert Series.objects.get(study__case=case).preview_key


@pytest.mark.parametrize("name", ["emri_small.dcm", "emri_small_RLE.dcm", "color3d_jpeg_baseline.dcm"])
def test_it_indexes_where_the_header_and_each_frame_lie(case: Case, name: str) -> None:
    _ingest(case, sample(name))
    instance = Instance.objects.get(series__study__case=case)
    data = tenant_storage().read_bytes(instance.storage_key)
    original = pydicom.dcmread(io.BytesIO(data))
    # The header is the file up to the Pixel Data element; each frame is where the index says.
    assert (
        instance.header_length
        and data[instance.header_length : instance.header_length + 4] == b"\xe0\x7f\x10\x00"
    )
    assert instance.frames_encapsulated is original.file_meta.TransferSyntaxUID.is_compressed
    stored = StoredFile(instance)
    for number in (1, instance.number_of_frames):
        expected = (
            get_frame(original.PixelData, number - 1, number_of_frames=instance.number_of_frames)
            if instance.frames_encapsulated
            else original.PixelData[(number - 1) * 64 * 64 * 2 : number * 64 * 64 * 2]
        )
        assert frame_stored(stored, number).data == expected


def _oracle(files: list[tuple[str, bytes]]) -> dict[str, dict[str, set[str]]]:
    """Study → series → SOP instance UIDs, read straight from the files with pydicom."""
    tree: dict[str, dict[str, set[str]]] = {}
    for _, data in files:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        if "SOPInstanceUID" in ds:
            tree.setdefault(ds.StudyInstanceUID, {}).setdefault(ds.SeriesInstanceUID, set()).add(
                ds.SOPInstanceUID
            )
    return tree


def test_it_ingests_a_whole_cd_in_a_zip_exactly(case: Case) -> None:
    files = cd_files()
    upload = _ingest(
        case, cd_zip(extra=[("AUTORUN.INF", b"[autorun]"), ("VIEWER/view.exe", PROGRAM)]), path="cd.zip"
    )
    assert upload.status == Upload.Status.DONE
    expected = _oracle(files)
    summary = case_imaging_summary(case=case)
    assert len(summary) == len(expected) == 6
    for study in summary:
        uid = Study.objects.get(pk=study.id).study_instance_uid
        assert study.series_count == len(expected[uid])
        assert study.instance_count == sum(len(uids) for uids in expected[uid].values())
        for series in study.series:
            series_uid = Series.objects.get(pk=series.id).series_instance_uid
            assert series.instance_count == len(expected[uid][series_uid])
            assert series.preview_key
    assert sum(study.instance_count for study in summary) == 31
    # The DICOMDIR is the disc's index, not an image: not stored, not a problem.
    assert not Instance.objects.filter(sop_class_uid="1.2.840.10008.1.3.10").exists()
    groups = {group.code: group for group in case_problems(case=case)}
    assert groups[FileProblem.Code.SKIPPED_PROGRAM].count == 2
    # Two patients on one disc: flagged to the patient.
    assert groups[FileProblem.Code.INCONSISTENT_PATIENT].messages == [messages.INCONSISTENT_PATIENT]
    # Nine of its CT files carry a stray byte in their preamble: cleared, images kept.
    assert groups[FileProblem.Code.PREAMBLE_CLEARED].count == 9
    assert set(groups) == {
        FileProblem.Code.SKIPPED_PROGRAM,
        FileProblem.Code.INCONSISTENT_PATIENT,
        FileProblem.Code.PREAMBLE_CLEARED,
    }


def test_it_flags_images_the_dicomdir_lists_but_the_zip_lacks(case: Case) -> None:
    kept = [entry for entry in cd_files() if entry[0] != "98892003/MR700/4648"]
    assert len(kept) == 31
    _ingest(case, zip_bytes(kept), path="cd.zip")
    assert Instance.objects.filter(series__study__case=case).count() == 30
    (problem,) = FileProblem.objects.filter(case=case, code=FileProblem.Code.MISSING_FILES)
    assert problem.message == messages.MISSING_FILES


def test_it_skips_viewer_programs_of_a_cd_quietly(case: Case) -> None:
    data = zip_bytes(
        [
            ("AUTORUN.INF", b"[autorun]\r\nopen=viewer.exe\r\n"),
            ("VIEWER/viewer.exe", b"MZ" + b"\x00" * 200),
            ("VIEWER/help.html", b"<html>help</html>"),
            ("DICOM/IM1", sample("CT_small.dcm")),
        ]
    )
    upload = _ingest(case, data, path="cd.zip")
    assert upload.status == Upload.Status.DONE
    assert Instance.objects.filter(series__study__case=case).count() == 1
    groups = case_problems(case=case)
    assert [(group.code, group.count, group.informational) for group in groups] == [
        (FileProblem.Code.SKIPPED_PROGRAM, 3, True)
    ]
    assert groups[0].messages == [messages.PROGRAM_SKIPPED]


def test_it_stores_a_duplicate_once(case: Case) -> None:
    data = sample("CT_small.dcm")
    first = _ingest(case, data, path="a/IM1")
    second = _ingest(case, data, path="b/IM1")
    assert (first.status, second.status) == (Upload.Status.DONE, Upload.Status.DONE)
    assert Instance.objects.filter(series__study__case=case).count() == 1
    (problem,) = FileProblem.objects.filter(case=case)
    assert (problem.code, problem.message, problem.path) == ("duplicate", messages.DUPLICATE, "b/IM1")
    # Its bytes were not kept twice.
    assert len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) == 1
    assert Study.objects.get(case=case).instance_count == 1


def test_it_stores_a_duplicate_inside_one_zip_once(case: Case) -> None:
    data = sample("CT_small.dcm")
    _ingest(case, zip_bytes([("A/IM1", data), ("B/IM1", data)]), path="cd.zip")
    assert Instance.objects.filter(series__study__case=case).count() == 1
    assert FileProblem.objects.get(case=case).code == FileProblem.Code.DUPLICATE


def test_it_grows_one_series_from_many_single_file_uploads(case: Case) -> None:
    # A folder drop: one upload per file, the series' preview follows its growth.
    files = [dicom_renamed("CT_small.dcm", InstanceNumber=n) for n in range(1, 6)]
    for number, data in enumerate(files, start=1):
        _ingest(case, data, path=f"DICOM/IM{number}")
        series = Series.objects.get(study__case=case)
        assert series.instance_count == number
        assert series.preview_instance_count == number
    study = Study.objects.get(case=case)
    assert (study.series_count, study.instance_count) == (1, 5)


def test_it_does_nothing_when_the_task_runs_twice(case: Case) -> None:
    upload = upload_make(case, sample("CT_small.dcm"))
    assert upload_ingest_run(upload_id=upload.pk) is not None
    assert upload_ingest_run(upload_id=upload.pk) is None
    assert Instance.objects.filter(series__study__case=case).count() == 1
    assert not FileProblem.objects.filter(case=case).exists()


def test_it_reingests_a_stale_claim_without_calling_its_own_files_duplicates(case: Case) -> None:
    upload = upload_make(
        case, zip_bytes([("IM1", sample("CT_small.dcm")), ("IM2", dicom_renamed("CT_small.dcm"))])
    )
    upload_ingest_run(upload_id=upload.pk)
    # As if the worker died after storing: the upload is stuck in INGESTING for an hour.
    from datetime import timedelta

    from django.utils import timezone

    Upload.objects.filter(pk=upload.pk).update(
        status=Upload.Status.INGESTING, updated=timezone.now() - timedelta(hours=1)
    )
    outcome = upload_ingest_run(upload_id=upload.pk)
    assert outcome is not None and outcome.accepted == 2
    assert Instance.objects.filter(series__study__case=case).count() == 2
    assert not FileProblem.objects.filter(case=case).exists()
    assert len(list(tenant_storage().list_keys(f"dicom/{case.public_id}"))) == 2


def test_it_queues_the_ingest_after_the_upload_commits(
    case: Case, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = upload_make(case, sample("CT_small.dcm"))
    queued = task_calls(monkeypatch, upload_ingest)
    with django_capture_on_commit_callbacks() as callbacks:
        upload_ingest_enqueue(upload=upload)
    assert queued == []  # not before the commit: the worker would not see the upload yet
    for callback in callbacks:
        callback()
    assert queued == [(upload.pk,)]


def test_it_redraws_a_preview_only_when_the_series_grew(case: Case) -> None:
    _ingest(case, sample("CT_small.dcm"))
    series = Series.objects.get(study__case=case)
    assert series_preview_ensure(series_id=series.pk) == series.preview_key
    _ingest(case, dicom_renamed("CT_small.dcm"), path="IM2")
    series.refresh_from_db()
    assert series.preview_instance_count == 2
    assert len(list(tenant_storage().list_keys(f"previews/{case.public_id}"))) == 1


def test_it_reports_progress_of_a_cases_uploads(case: Case) -> None:
    _ingest(case, sample("CT_small.dcm"))
    _ingest(case, b"not an image at all", path="notes.bin")
    upload_make(case, sample("MR_small.dcm"))
    progress = case_ingest_progress(case=case)
    assert (progress.waiting, progress.processing, progress.done, progress.failed) == (1, 0, 1, 1)
    assert not progress.finished
