"""Images kept where they lie in the batch they came in (imaging.instance_files): a folder drop's
tar, or a zip stored without compression, is not written out again image by image; every
reader of an image (viewer frames and metadata, download, de-identified export, PACS send,
previews) reads its place in the batch and gets the file the patient sent, byte for byte."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator

import pydicom
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings as SettingsWrapper

from imaging.deid.export import case_export_deidentified
from imaging.deid.profile import DeidOptions
from imaging.dicomweb.frames import StoredFile
from imaging.dicomweb.selectors import instance_metadata_bytes
from imaging.download import case_originals_zip
from imaging.ingest.pipeline import upload_ingest_run
from imaging.ingest.preview import series_preview_ensure
from imaging.instance_files import instance_file_read
from imaging.models import FileProblem, Instance, PacsSend, Series, Study, Upload
from imaging.pacs.sends import _study_files
from imaging.pixel_index import instance_pixel_index_fill
from imaging.tests.fixtures.ingest import (
    case_make,
    dicom_renamed,
    stored_images,
    tar_bytes,
    upload_make,
    with_preamble,
    zip_bytes,
)
from intake.models import Case
from storage.tenant import tenant_storage
from storage.tests.conftest import moto_endpoint
from tenants.models import Institution

__all__ = ["moto_endpoint"]


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def _ingest(case: Case, data: bytes, path: str = "batch-0001.tar") -> Upload:
    upload = upload_make(case, data, path=path)
    upload_ingest_run(upload_id=upload.pk)
    upload.refresh_from_db()
    return upload


def _copies(case: Case) -> list[str]:
    """Images written out on their own (not kept in their batch)."""
    return list(tenant_storage().list_keys(f"dicom/{case.public_id}"))


def _slices(count: int) -> list[tuple[str, bytes]]:
    return [(f"CT/IM{n}", dicom_renamed("CT_small.dcm", InstanceNumber=n)) for n in range(1, count + 1)]


def test_a_batchs_images_are_kept_in_it_not_written_again(case: Case) -> None:
    files = _slices(3)
    upload = _ingest(case, tar_bytes(files))

    assert upload.status == Upload.Status.DONE
    instances = list(Instance.objects.filter(series__study__case=case))
    assert {(i.storage_key, i.storage_offset > 0) for i in instances} == {(upload.storage_key, True)}
    assert _copies(case) == []
    # The batch is the images' home now: it stays once the upload is done.
    assert tenant_storage().exists(upload.storage_key)
    sent = {pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID: data for _, data in files}
    assert stored_images(case) == sent


def test_an_image_whose_preamble_is_cleared_is_written_on_its_own(case: Case) -> None:
    suspicious = with_preamble(dicom_renamed("CT_small.dcm"), b"MZ" + b"\x90" * 60)
    upload = _ingest(case, tar_bytes([("IM1", suspicious), *_slices(1)]))

    assert upload.status == Upload.Status.DONE
    own = Instance.objects.get(series__study__case=case, preamble_cleared=True)
    assert own.storage_offset == 0 and own.storage_key.startswith(f"dicom/{case.public_id}/")
    assert instance_file_read(own)[:128] == b"\x00" * 128
    assert len(_copies(case)) == 1


def test_a_zip_stored_as_it_is_keeps_its_images_and_a_deflated_one_is_unpacked(case: Case) -> None:
    stored = _ingest(case, zip_bytes(_slices(2), compression=zipfile.ZIP_STORED), path="cd.zip")
    deflated_files = [(f"MR/IM{n}", dicom_renamed("MR_small.dcm")) for n in range(2)]
    deflated = _ingest(case, zip_bytes(deflated_files, compression=zipfile.ZIP_DEFLATED), path="mr.zip")

    in_batch = Instance.objects.filter(series__study__case=case, storage_key=stored.storage_key)
    assert in_batch.count() == 2 and all(i.storage_offset > 0 for i in in_batch)
    assert Instance.objects.filter(upload=deflated, storage_offset=0).count() == 2
    assert len(_copies(case)) == 2
    assert len(stored_images(case)) == 4
    assert tenant_storage().exists(stored.storage_key)
    assert not tenant_storage().exists(deflated.storage_key)  # every image copied out: raw bytes go


def test_a_duplicate_in_a_batch_leaves_the_batch_whole(case: Case) -> None:
    files = _slices(2)
    first = _ingest(case, tar_bytes(files))
    again = _ingest(case, tar_bytes([files[0]]), path="batch-0002.tar")

    assert list(FileProblem.objects.filter(upload=again).values_list("code", flat=True)) == [
        FileProblem.Code.DUPLICATE
    ]
    assert Instance.objects.filter(series__study__case=case).count() == 2
    assert tenant_storage().exists(first.storage_key)
    assert stored_images(case) == {pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID: d for _, d in files}


def test_ingesting_a_batch_twice_neither_duplicates_nor_loses_its_images(case: Case) -> None:
    upload = _ingest(case, tar_bytes(_slices(2)))
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.RECEIVED)  # a redelivered task

    upload_ingest_run(upload_id=upload.pk)

    upload.refresh_from_db()
    assert upload.status == Upload.Status.DONE
    assert not FileProblem.objects.filter(case=case).exists()
    assert len(stored_images(case)) == 2
    assert tenant_storage().exists(upload.storage_key)


def test_every_reader_gets_the_file_the_patient_sent(case: Case) -> None:
    files = _slices(3)
    sent = {pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID: data for _, data in files}
    _ingest(case, tar_bytes(files))
    instances = list(Instance.objects.filter(series__study__case=case).order_by("instance_number"))

    # The viewer: each image's metadata (cached per image, not per batch) and its frame.
    for instance in instances:
        metadata = instance_metadata_bytes(instance)
        assert instance.sop_instance_uid.encode() in metadata
        original = pydicom.dcmread(io.BytesIO(sent[instance.sop_instance_uid]))
        assert StoredFile(instance).frame_bytes(1) == original.PixelData
    # The pixel index, made again from the stored bytes, says what ingest said.
    first = instances[0]
    indexed = (first.header_length, first.pixel_data_offset, bytes(first.frame_spans or b""))
    Instance.objects.filter(pk=first.pk).update(header_length=None)
    first.header_length = None
    instance_pixel_index_fill(instance=first)
    assert (first.header_length, first.pixel_data_offset, bytes(first.frame_spans or b"")) == indexed

    # The download of the originals.
    downloaded = zipfile.ZipFile(io.BytesIO(b"".join(case_originals_zip(case=case))))
    assert sorted(downloaded.read(name) for name in downloaded.namelist()) == sorted(sent.values())

    # The de-identified export reads every image (and changes them).
    export = case_export_deidentified(case=case, options=DeidOptions())
    assert export.exported == 3

    # A PACS send copies each file as it is.
    send = PacsSend(case=case, study=Study.objects.get(case=case), deidentified=False)
    with _study_files(send) as (paths, left_out):
        assert left_out == 0
        assert sorted(path.read_bytes() for path in paths) == sorted(sent.values())

    # The series' preview is drawn from its middle image.
    series = Series.objects.get(study__case=case)
    key = series_preview_ensure(series_id=series.pk)
    assert tenant_storage().read_bytes(key).startswith(b"\x89PNG")


def test_the_preview_and_the_download_list_a_series_in_one_query_however_long(case: Case) -> None:
    _ingest(case, tar_bytes(_slices(12)))
    series = Series.objects.get(study__case=case)

    with CaptureQueriesContext(connection) as preview:
        series_preview_ensure(series_id=series.pk)
    with CaptureQueriesContext(connection) as download:
        assert len(b"".join(case_originals_zip(case=case))) > 0

    instance_queries = [q for q in [*preview, *download] if 'FROM "imaging_instance"' in q["sql"]]
    assert len(instance_queries) == 2  # one each, not one per image


@pytest.fixture
def on_s3(settings: SettingsWrapper, moto_endpoint: str) -> None:
    """Storage on an S3 server (moto): images read back with ranged GETs."""
    settings.STORAGE_BACKEND = "s3"
    settings.S3_ENDPOINT = moto_endpoint
    settings.S3_ACCESS_KEY = settings.S3_SECRET_KEY = "testing"
    settings.S3_BUCKET = f"test-{uuid.uuid4().hex[:12]}"
    settings.S3_SECURE = False
    settings.S3_REGION = "us-east-1"
    settings.S3_SSE = False


def test_on_object_storage_an_image_is_its_range_of_the_batch(on_s3: None, case: Case) -> None:
    files = _slices(3)
    upload = _ingest(case, tar_bytes(files))

    assert upload.status == Upload.Status.DONE
    instances = list(Instance.objects.filter(series__study__case=case))
    assert {i.storage_key for i in instances} == {upload.storage_key}
    sent = {pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID: data for _, data in files}
    assert stored_images(case) == sent
    for instance in instances:
        original = pydicom.dcmread(io.BytesIO(sent[instance.sop_instance_uid]))
        assert StoredFile(instance).frame_bytes(1) == original.PixelData


def test_on_object_storage_a_large_image_in_a_batch_is_indexed_by_seeking_its_range(
    on_s3: None, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image whose pixel index is made on first read (one ingested before indexes existed)
    and too large to fetch whole is parsed by seeking within its range of the batch."""
    _ingest(case, tar_bytes(_slices(2)))
    instance = Instance.objects.filter(series__study__case=case).order_by("instance_number").first()
    assert instance is not None and instance.storage_offset > 0
    indexed = (instance.header_length, instance.pixel_data_offset, bytes(instance.frame_spans or b""))
    monkeypatch.setattr("imaging.pixel_index.WHOLE_READ_BYTES", 1024)  # smaller than the image
    Instance.objects.filter(pk=instance.pk).update(header_length=None)
    instance.header_length = None

    instance_pixel_index_fill(instance=instance)

    assert (instance.header_length, instance.pixel_data_offset, bytes(instance.frame_spans or b"")) == indexed
