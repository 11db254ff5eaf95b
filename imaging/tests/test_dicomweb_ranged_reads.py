"""On S3, a frame or the metadata of an instance costs its own bytes, not the file's: what the
object store sends back is counted on the wire (a proxy in front of moto), and the frames are
byte for byte those of the file."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest
from django.test import Client
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from pytest_django.fixtures import Settings as SettingsWrapper

from imaging.models import Instance
from intake.models import Case
from storage.tests.conftest import moto_endpoint
from tenants.models import Institution
from tests.counting_proxy import CountingProxy, counting_proxy
from tests.dicomweb_cases import SeriesFiles, case_with_study
from tests.staff import staff_force_login

__all__ = ["moto_endpoint"]

RAW = 'multipart/related; type="application/octet-stream"'
AS_STORED = f"{RAW}; transfer-syntax=*"
KiB = 1024
# Per request: HTTP headers of the object store's answers, and a HEAD for the size.
OVERHEAD = 4 * KiB


@pytest.fixture
def s3(settings: SettingsWrapper, moto_endpoint: str) -> Iterator[CountingProxy]:
    """Storage on moto's S3, reached through a proxy that counts what comes back."""
    with counting_proxy(moto_endpoint) as proxy:
        settings.STORAGE_BACKEND = "s3"
        settings.S3_ENDPOINT = proxy.address
        settings.S3_ACCESS_KEY = settings.S3_SECRET_KEY = "testing"
        settings.S3_BUCKET = f"test-{uuid.uuid4().hex[:12]}"
        settings.S3_SECURE = False
        settings.S3_REGION = "us-east-1"
        settings.S3_SSE = False
        yield proxy


def _relabelled(ds: pydicom.Dataset, number: int) -> pydicom.Dataset:
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.11"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = number
    ds.InstanceNumber = 1
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


def _native(frames: int, side: int) -> pydicom.Dataset:
    path = get_testdata_file("emri_small.dcm")
    assert path is not None
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = side
    ds.NumberOfFrames = frames
    pixels = np.random.default_rng(7).integers(0, 4096, (frames, side, side), dtype="<u2")
    ds.PixelData = pixels.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return _relabelled(ds, 1)


def _rle(frames: int) -> pydicom.Dataset:
    ds = _native(frames, 256)
    ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    return _relabelled(ds, 2)


def _jpeg() -> pydicom.Dataset:
    path = get_testdata_file("color3d_jpeg_baseline.dcm")  # 120 JPEG frames of 640×480, 6 MB
    assert path is not None
    return _relabelled(pydicom.dcmread(path), 3)


def _url(case: Case, ds: pydicom.Dataset) -> str:
    return (
        f"/dicomweb/cases/{case.public_id}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _one_part(response: object) -> bytes:
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    boundary = re.search(r"boundary=([^;\s]+)", response["Content-Type"])[1]  # type: ignore[index]
    (part,) = body.split(f"--{boundary}".encode())[1:-1]
    return part.partition(b"\r\n\r\n")[2][: -len(b"\r\n")]


def _patient() -> Client:
    client = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(client, "patient@neuro.example.com")
    return client


def test_it_reads_one_native_frame_of_a_large_file_not_the_file(
    neuro: Institution, s3: CountingProxy
) -> None:
    ds = _native(frames=24, side=512)  # 12 MiB; a frame is 512 KiB
    frame_bytes = 512 * 512 * 2
    case = case_with_study(
        schema_name="neuro", owner_email="patient@neuro.example.com", series=[SeriesFiles("n", [ds])]
    )
    client = _patient()
    s3.reset()

    # The first read indexes the file (stored before indexes): its header only.
    first = client.get(f"{_url(case, ds)}/frames/5", HTTP_ACCEPT=RAW)
    assert first.status_code == 200
    assert _one_part(first) == ds.PixelData[4 * frame_bytes : 5 * frame_bytes]
    assert s3.received < frame_bytes + 64 * KiB + 4 * OVERHEAD

    s3.reset()
    last = client.get(f"{_url(case, ds)}/frames/24", HTTP_ACCEPT=RAW)
    assert _one_part(last) == ds.PixelData[23 * frame_bytes :]
    assert s3.received < frame_bytes + 8 * KiB + 2 * OVERHEAD

    s3.reset()
    decoded = client.get(f"{_url(case, ds)}/frames/9", HTTP_ACCEPT=RAW)
    assert _one_part(decoded) == ds.PixelData[8 * frame_bytes : 9 * frame_bytes]
    assert s3.received < frame_bytes + 8 * KiB + 2 * OVERHEAD

    s3.reset()
    metadata = client.get(f"{_url(case, ds)}/metadata")
    answer = json.loads(b"".join(metadata.streaming_content))  # type: ignore[attr-defined]
    assert answer[0]["00280010"]["Value"] == [512]
    assert s3.received < 8 * KiB + OVERHEAD  # the header, not 12 MiB


@pytest.mark.parametrize("make", [_jpeg, lambda: _rle(frames=20)], ids=["JPEG baseline", "RLE"])
def test_it_reads_one_compressed_frame_not_the_file(
    neuro: Institution, s3: CountingProxy, make: object
) -> None:
    ds = make()  # type: ignore[operator]
    count = int(ds.NumberOfFrames)
    frames = [get_frame(ds.PixelData, i, number_of_frames=count) for i in range(count)]
    case = case_with_study(
        schema_name="neuro", owner_email="patient@neuro.example.com", series=[SeriesFiles("c", [ds])]
    )
    client = _patient()
    assert client.get(f"{_url(case, ds)}/frames/1", HTTP_ACCEPT=AS_STORED).status_code == 200  # indexed

    for number in (2, count // 2, count):
        s3.reset()
        stored = _one_part(client.get(f"{_url(case, ds)}/frames/{number}", HTTP_ACCEPT=AS_STORED))
        assert stored == frames[number - 1]
        assert s3.received < len(stored) + 8 * KiB + 2 * OVERHEAD

    # Decoding needs the header too (this one is 34 KiB: the JPEG file's is large).
    with schema_context("neuro"):
        header_length = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID).header_length or 0
    s3.reset()
    decoded = _one_part(client.get(f"{_url(case, ds)}/frames/{count}", HTTP_ACCEPT=RAW))
    assert decoded == np.ascontiguousarray(ds.pixel_array[count - 1]).tobytes()
    assert s3.received < len(frames[-1]) + header_length + 2 * OVERHEAD
