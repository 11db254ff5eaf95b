"""Our DICOMweb answers a standard client (dicomweb-client) correctly, over a live gunicorn."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
import requests.adapters
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from tests.dicomweb_cases import SeriesFiles, case_remove, case_with_study, demo_study
from tests.live import LiveServer

EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def study(live_platform: LiveServer, django_db_blocker: Any) -> Iterator[tuple[Case, str, list[SeriesFiles]]]:
    with django_db_blocker.unblock():
        study_uid, series = demo_study(ct_slices=4)
        case = case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=series)
    yield case, study_uid, series
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)


class _InstitutionHost(requests.adapters.HTTPAdapter):
    """Python cannot resolve neuro.localhost, so requests go to 127.0.0.1 naming the institution
    in the Host header; dicomweb-client writes its own Host header (from the URL), put back here."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        request.headers["Host"] = self.host
        return super().send(request, **kwargs)


def _session(live_platform: LiveServer, email: str) -> requests.Session:
    """A browser-like session signed in through the sign-in form (patients have no second factor)."""
    session = requests.Session()
    host = f"neuro.localhost:{live_platform.port}"
    session.headers["Host"] = host
    session.mount("http://127.0.0.1", _InstitutionHost(host))
    login = f"http://127.0.0.1:{live_platform.port}/accounts/login/"
    page = session.get(login, timeout=60).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    session.post(
        login, {"login": email, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": token[1]}, timeout=10
    )
    assert "sessionid" in session.cookies
    # The cookie jar files cookies under the Host header, which dicomweb-client rewrites; send
    # the session cookie explicitly instead.
    session.headers["Cookie"] = f"sessionid={session.cookies['sessionid']}"
    session.cookies.clear()
    return session


@pytest.fixture(scope="module")
def client(live_platform: LiveServer, study: tuple[Case, str, list[SeriesFiles]]) -> DICOMwebClient:
    case = study[0]
    return DICOMwebClient(
        url=f"http://127.0.0.1:{live_platform.port}/dicomweb/cases/{case.public_id}",
        session=_session(live_platform, "patient@neuro.example.com"),
    )


def _series(study: tuple[Case, str, list[SeriesFiles]], description: str) -> pydicom.Dataset:
    return next(s for s in study[2] if s.description == description).datasets[0]


def test_it_answers_qido_searches(client: DICOMwebClient, study: tuple[Case, str, list[SeriesFiles]]) -> None:
    _, study_uid, series = study
    studies = client.search_for_studies()
    assert [s["0020000D"]["Value"][0] for s in studies] == [study_uid]
    assert client.search_for_studies(search_filters={"StudyDate": "20240101-20240131"})
    assert client.search_for_studies(search_filters={"StudyDate": "20250101-"}) == []
    assert client.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})
    assert client.search_for_studies(search_filters={"AccessionNumber": "ACC-*"})
    found = client.search_for_series(study_uid)
    assert len(found) == len(series)
    assert client.search_for_series(study_uid, search_filters={"Modality": "CT"}, limit=1)[0]["00080060"] == {
        "vr": "CS",
        "Value": ["CT"],
    }
    ct = series[0].datasets
    instances = client.search_for_instances(study_uid, ct[0].SeriesInstanceUID)
    assert sorted(i["00080018"]["Value"][0] for i in instances) == sorted(d.SOPInstanceUID for d in ct)
    assert len(client.search_for_instances(study_uid, ct[0].SeriesInstanceUID, limit=2, offset=3)) == 1


def test_it_serves_metadata_and_whole_instances(
    client: DICOMwebClient, study: tuple[Case, str, list[SeriesFiles]]
) -> None:
    _, study_uid, series = study
    ct = series[0].datasets
    metadata = client.retrieve_series_metadata(study_uid, ct[0].SeriesInstanceUID)
    datasets = [pydicom.Dataset.from_json(m) for m in metadata]
    assert sorted(d.InstanceNumber for d in datasets) == [1, 2, 3, 4]
    assert datasets[0].Rows == 128 and "PixelData" not in datasets[0]
    assert len(client.retrieve_study_metadata(study_uid)) == sum(len(s.datasets) for s in series)

    j2k = _series(study, "MR JPEG 2000")
    stored = client.retrieve_instance(
        study_uid, j2k.SeriesInstanceUID, j2k.SOPInstanceUID, media_types=(("application/dicom", "*"),)
    )
    assert stored.file_meta.TransferSyntaxUID == j2k.file_meta.TransferSyntaxUID
    assert np.array_equal(stored.pixel_array, j2k.pixel_array)
    # Asked for Explicit VR Little Endian, a compressed instance comes back decompressed.
    plain = client.retrieve_instance(
        study_uid,
        j2k.SeriesInstanceUID,
        j2k.SOPInstanceUID,
        media_types=(("application/dicom", EXPLICIT_LE),),
    )
    assert plain.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(plain.pixel_array, j2k.pixel_array)
    assert (
        len(
            client.retrieve_series(
                study_uid, ct[0].SeriesInstanceUID, media_types=(("application/dicom", "*"),)
            )
        )
        == 4
    )


@pytest.mark.parametrize(
    "description", ["CT head axial", "MR JPEG 2000", "Colour RLE", "NM JPEG lossless", "Colour JPEG baseline"]
)
def test_it_serves_frames_raw_whatever_the_stored_compression(
    client: DICOMwebClient, study: tuple[Case, str, list[SeriesFiles]], description: str
) -> None:
    original = _series(study, description)
    (frame,) = client.retrieve_instance_frames(
        study[1], original.SeriesInstanceUID, original.SOPInstanceUID, frame_numbers=[1]
    )
    expected = original.pixel_array
    assert len(frame) == expected.nbytes
    if description != "Colour JPEG baseline":  # lossless: the exact pixels
        assert frame == np.ascontiguousarray(expected.astype(expected.dtype.newbyteorder("<"))).tobytes()


def test_it_serves_compressed_frames_as_stored_when_asked(
    client: DICOMwebClient, study: tuple[Case, str, list[SeriesFiles]]
) -> None:
    j2k = _series(study, "MR JPEG 2000")
    (codestream,) = client.retrieve_instance_frames(
        study[1],
        j2k.SeriesInstanceUID,
        j2k.SOPInstanceUID,
        frame_numbers=[1],
        media_types=(("image/jp2", j2k.file_meta.TransferSyntaxUID),),
    )
    assert codestream[:4] == b"\xff\x4f\xff\x51"  # a JPEG 2000 codestream, not decoded pixels
    video = _series(study, "Video clip")
    with pytest.raises(requests.HTTPError) as refused:
        client.retrieve_instance_frames(
            study[1], video.SeriesInstanceUID, video.SOPInstanceUID, frame_numbers=[1]
        )
    assert refused.value.response is not None and refused.value.response.status_code == 406


def test_it_renders_images_for_display(
    client: DICOMwebClient, study: tuple[Case, str, list[SeriesFiles]]
) -> None:
    ct = study[2][0].datasets[0]
    png = client.retrieve_instance_rendered(
        study[1], ct.SeriesInstanceUID, ct.SOPInstanceUID, media_types=("image/png",)
    )
    picture = np.asarray(Image.open(io.BytesIO(png)))
    assert picture.shape == (128, 128) and picture.std() > 10
    narrow = client.retrieve_instance_rendered(
        study[1],
        ct.SeriesInstanceUID,
        ct.SOPInstanceUID,
        media_types=("image/png",),
        params={"window": "40,80,linear"},
    )
    assert narrow != png
