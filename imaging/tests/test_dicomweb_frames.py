"""Frames of real multi-frame files, and whole instances in the DICOMweb default transfer syntax."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pydicom
import pytest
from django.test import Client
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from intake.models import Case
from tenants.models import Institution
from tests.dicomweb_cases import SeriesFiles, case_with_study
from tests.staff import staff_force_login

RAW = 'multipart/related; type="application/octet-stream"'
DICOM = 'multipart/related; type="application/dicom"'


def _file(name: str, number: int) -> pydicom.Dataset:
    path = get_testdata_file(name)
    assert path is not None
    ds = pydicom.dcmread(path)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = number
    ds.InstanceNumber = 1
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


@pytest.fixture
def files(neuro: Institution) -> tuple[Case, dict[str, pydicom.Dataset]]:
    named = {
        # 10 frames of 64×64 MR, 16-bit, uncompressed; 2 frames of RGB, RLE-compressed;
        # an uncompressed Implicit VR file; a JPEG 2000 one.
        "emri_small.dcm": _file("emri_small.dcm", 1),
        "SC_rgb_rle_2frame.dcm": _file("SC_rgb_rle_2frame.dcm", 2),
        "MR_small_implicit.dcm": _file("MR_small_implicit.dcm", 3),
        "MR_small_jp2klossless.dcm": _file("MR_small_jp2klossless.dcm", 4),
    }
    case = case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=[SeriesFiles(name, [ds]) for name, ds in named.items()],
    )
    return case, named


def _parts(response: object) -> list[tuple[str, bytes]]:
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    boundary = re.search(r"boundary=([^;\s]+)", response["Content-Type"])[1]  # type: ignore[index]
    parts = []
    for chunk in body.split(f"--{boundary}".encode())[1:-1]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        parts.append((head.decode().strip(), data[: -len(b"\r\n")]))
    return parts


def _url(case: Case, ds: pydicom.Dataset) -> str:
    return (
        f"/dicomweb/cases/{case.public_id}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _patient() -> Client:
    client = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(client, "patient@neuro.example.com")
    return client


def test_it_extracts_single_frames_of_multi_frame_files(
    files: tuple[Case, dict[str, pydicom.Dataset]],
) -> None:
    case, named = files
    client = _patient()
    mr = named["emri_small.dcm"]
    expected = mr.pixel_array  # (10, 64, 64)
    response = client.get(f"{_url(case, mr)}/frames/7,2", HTTP_ACCEPT=RAW)
    assert response.status_code == 200
    (seventh_type, seventh), (_, second) = _parts(response)
    assert f"transfer-syntax={ExplicitVRLittleEndian}" in seventh_type
    assert seventh == expected[6].astype("<u2").tobytes()
    assert second == expected[1].astype("<u2").tobytes()
    assert client.get(f"{_url(case, mr)}/frames/11", HTTP_ACCEPT=RAW).status_code == 404

    rle = named["SC_rgb_rle_2frame.dcm"]
    colours = rle.pixel_array  # (2, 100, 100, 3), decoded to RGB
    ((_, frame),) = _parts(client.get(f"{_url(case, rle)}/frames/2", HTTP_ACCEPT=RAW))
    assert frame == np.ascontiguousarray(colours[1]).tobytes()
    # As stored: the second RLE fragment, not the first.
    stored = client.get(f"{_url(case, rle)}/frames/2", HTTP_ACCEPT=f"{RAW}; transfer-syntax=*")
    ((part_type, fragment),) = _parts(stored)
    assert "transfer-syntax=1.2.840.10008.1.2.5" in part_type
    first = _parts(client.get(f"{_url(case, rle)}/frames/1", HTTP_ACCEPT=f"{RAW}; transfer-syntax=*"))[0][1]
    assert fragment != first and len(fragment) > 100


@pytest.mark.parametrize("accept", ["*/*", DICOM, f"{DICOM}; transfer-syntax={ExplicitVRLittleEndian}"])
def test_it_sends_whole_instances_in_explicit_vr_little_endian_unless_asked_otherwise(
    files: tuple[Case, dict[str, pydicom.Dataset]], accept: str
) -> None:
    case, named = files
    client = _patient()
    for name in ("MR_small_jp2klossless.dcm", "MR_small_implicit.dcm", "emri_small.dcm"):
        original = named[name]
        ((part_type, data),) = _parts(client.get(_url(case, original), HTTP_ACCEPT=accept))
        assert f"transfer-syntax={ExplicitVRLittleEndian}" in part_type, name
        received = pydicom.dcmread(io.BytesIO(data))
        assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, name
        assert np.array_equal(received.pixel_array, original.pixel_array), name
    # transfer-syntax=* keeps the stored compression.
    j2k = named["MR_small_jp2klossless.dcm"]
    ((part_type, _),) = _parts(client.get(_url(case, j2k), HTTP_ACCEPT=f"{DICOM}; transfer-syntax=*"))
    assert f"transfer-syntax={j2k.file_meta.TransferSyntaxUID}" in part_type


def test_it_refuses_the_frames_to_another_patient(files: tuple[Case, dict[str, pydicom.Dataset]]) -> None:
    case, named = files
    from imaging.tests.test_dicomweb_access import _another_patient

    client = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(client, _another_patient())
    assert client.get(f"{_url(case, named['emri_small.dcm'])}/frames/1", HTTP_ACCEPT=RAW).status_code == 404
    with schema_context("neuro"):
        from audit.models import AuditEvent

        assert AuditEvent.objects.filter(case_id=case.pk, action="dicomweb.frames", allowed=False).exists()


def test_it_audits_reading_a_series_frames_once_not_per_frame(
    files: tuple[Case, dict[str, pydicom.Dataset]],
) -> None:
    from audit.models import AuditEvent

    case, named = files
    client = _patient()
    mr, rle = named["emri_small.dcm"], named["SC_rgb_rle_2frame.dcm"]
    for number in range(1, 11):
        assert client.get(f"{_url(case, mr)}/frames/{number}", HTTP_ACCEPT=RAW).status_code == 200
    client.get(f"{_url(case, rle)}/frames/1", HTTP_ACCEPT=RAW)
    client.get(f"{_url(case, mr)}/metadata")
    with schema_context("neuro"):
        frames = list(AuditEvent.objects.filter(case_id=case.pk, action="dicomweb.frames"))
        assert sorted(event.detail["series"] for event in frames) == sorted(
            [mr.SeriesInstanceUID, rle.SeriesInstanceUID]
        )
        assert all(event.actor_email == "patient@neuro.example.com" and event.allowed for event in frames)
        assert AuditEvent.objects.filter(case_id=case.pk, action="dicomweb.metadata").count() == 1


def test_it_refuses_duplicate_and_absurd_frame_lists(files: tuple[Case, dict[str, pydicom.Dataset]]) -> None:
    from imaging.dicomweb.views import BAD_FRAME_LIST, DUPLICATE_FRAMES, TOO_MANY_FRAMES

    case, named = files
    client = _patient()
    url = f"{_url(case, named['emri_small.dcm'])}/frames/"
    for frames, message in (
        (",".join(["1"] * 250), TOO_MANY_FRAMES),
        ("1,2,1", DUPLICATE_FRAMES),
        ("1," * 10 + "1", DUPLICATE_FRAMES),
        ("0", BAD_FRAME_LIST),
        ("99999999999999999999", BAD_FRAME_LIST),
        ("１", BAD_FRAME_LIST),  # a full-width digit
    ):
        response = client.get(url + frames, HTTP_ACCEPT=RAW)
        assert response.status_code == 400, frames
        assert response.content.decode() == message


def test_it_bounds_the_bytes_of_one_request(
    files: tuple[Case, dict[str, pydicom.Dataset]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imaging.dicomweb import frames as frames_module

    case, named = files
    client = _patient()
    url = f"{_url(case, named['emri_small.dcm'])}/frames/"
    one_frame = 64 * 64 * 2
    monkeypatch.setattr(frames_module, "MAX_FRAME_BYTES_PER_REQUEST", 3 * one_frame)
    assert client.get(url + "1,2,3", HTTP_ACCEPT=RAW).status_code == 200
    response = client.get(url + "1,2,3,4", HTTP_ACCEPT=RAW)
    assert response.status_code == 400 and response.content.decode() == frames_module.FRAMES_TOO_LARGE


def test_it_streams_frames_one_at_a_time(
    files: tuple[Case, dict[str, pydicom.Dataset]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imaging.dicomweb import views

    case, named = files
    produced: list[int] = []

    def counting(original: Any) -> Any:
        def produce(instance: object, number: int) -> object:
            produced.append(number)
            return original(instance, number)

        return produce

    monkeypatch.setattr(views, "frame_decoded", counting(views.frame_decoded))
    monkeypatch.setattr(views, "frame_stored", counting(views.frame_stored))
    response = _patient().get(f"{_url(case, named['emri_small.dcm'])}/frames/1,2,3", HTTP_ACCEPT=RAW)
    # Only the first frame is made before the answer starts (so an undecodable compression is a
    # clean 406); the others one at a time as the body is read.
    assert response.status_code == 200 and produced == [1]
    body = iter(response.streaming_content)  # type: ignore[attr-defined]
    next(body), next(body)  # the first part's header and its frame
    assert produced == [1]
    next(body), next(body), next(body)  # the first part's end, the second's header and frame
    assert produced == [1, 2]
