"""DICOMweb as PS3.18 says: QIDO-RS matching and includefield, required attributes, content
negotiation (406, XML), rendered resources at every level, HEAD, CORS, and integration keys."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from django.test import Client, override_settings
from django_tenants.utils import schema_context
from PIL import Image

from accounts.models import User
from audit.models import AuditEvent
from imaging.dicomweb.access import BAD_CREDENTIAL
from imaging.dicomweb.qido import BAD_INCLUDEFIELD
from imaging.models import IntegrationCredential
from intake.models import Case
from tenants.models import Institution
from tests.dicomweb_cases import case_with_study, demo_study
from tests.staff import staff_force_login

HOST = "neuro.localhost"
STUDY_ID, INSTANCE_AVAILABILITY, BITS_ALLOCATED = "00200010", "00080056", "00280100"
PATIENT_NAME, SLICE_THICKNESS, BODY_PART = "00100010", "00180050", "00180015"


@pytest.fixture
def study(neuro: Institution) -> Iterator[tuple[Case, str]]:
    study_uid, series = demo_study(ct_slices=3)
    case = case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=series)
    yield case, study_uid


@pytest.fixture
def reader(study: tuple[Case, str]) -> Client:
    client = Client(HTTP_HOST=HOST)
    staff_force_login(client, "coordinator@neuro.example.com")
    return client


def _uids(response: object) -> list[str]:
    return [item["0020000D"]["Value"][0] for item in response.json()]  # type: ignore[attr-defined]


def _body(response: object) -> bytes:
    streamed = getattr(response, "streaming_content", None)
    return b"".join(streamed) if streamed is not None else response.content  # type: ignore[attr-defined]


def _parts(response: object) -> list[bytes]:
    boundary = re.search(r"boundary=([^;\s]+)", response["Content-Type"])[1]  # type: ignore[index]
    chunks = _body(response).split(f"--{boundary}".encode())
    return [chunk.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for chunk in chunks[1:-1]]


def test_it_answers_the_required_study_attributes(reader: Client, study: tuple[Case, str]) -> None:
    found = reader.get("/dicomweb/studies", {"StudyInstanceUID": study[1]}).json()[0]
    assert found[STUDY_ID]["Value"] == ["SR-7"]
    assert found[INSTANCE_AVAILABILITY]["Value"] == ["ONLINE"]
    assert found["00081190"]["Value"][0].endswith(f"/dicomweb/studies/{study[1]}")
    assert BODY_PART not in found  # not required, so only on request
    instances = reader.get(f"/dicomweb/studies/{study[1]}/instances").json()
    assert {item[BITS_ALLOCATED]["Value"][0] for item in instances} >= {16, 8}
    assert all(item[INSTANCE_AVAILABILITY]["Value"] == ["ONLINE"] for item in instances)


def test_it_includes_fields_by_keyword_tag_and_all(reader: Client, study: tuple[Case, str]) -> None:
    uid = study[1]
    by_keyword = reader.get(
        "/dicomweb/studies", {"StudyInstanceUID": uid, "includefield": "BodyPartExamined"}
    )
    assert BODY_PART in by_keyword.json()[0]
    every = reader.get(f"/dicomweb/studies/{uid}/series", {"includefield": "all"}).json()[0]
    # A series search with includefield=all carries its study's attributes too.
    assert every[STUDY_ID]["Value"] == ["SR-7"] and every[PATIENT_NAME]["Value"] == [
        {"Alphabetic": "Test^Viewer"}
    ]
    # A tag no row keeps is read from the first instance's header.
    from_file = reader.get(f"/dicomweb/studies/{uid}/instances", {"includefield": SLICE_THICKNESS}).json()
    assert any("Value" in item[SLICE_THICKNESS] for item in from_file)
    refused = reader.get("/dicomweb/studies", {"includefield": "NoSuchKeyword"})
    assert refused.status_code == 400
    assert refused.content.decode() == BAD_INCLUDEFIELD.format(name="NoSuchKeyword")


def test_it_matches_patient_name_with_wildcards_in_any_case_and_patient_id(
    reader: Client, study: tuple[Case, str]
) -> None:
    uid = study[1]
    for value in ("test^viewer", "TEST*", "t?st^v*"):
        response = reader.get("/dicomweb/studies", {"PatientName": value})
        assert uid in _uids(response), value
        assert "Warning" not in response  # matched, not ignored
    assert uid not in _uids(reader.get("/dicomweb/studies", {"PatientName": "Doe*"}))
    assert uid in _uids(reader.get("/dicomweb/studies", {"PatientName": "view", "fuzzymatching": "true"}))
    assert uid in _uids(reader.get("/dicomweb/studies", {"PatientID": "SR-TEST-1"}))
    assert uid not in _uids(reader.get("/dicomweb/studies", {"PatientID": "SR-TEST-2"}))
    assert uid in _uids(reader.get("/dicomweb/studies", {"StudyDate": "20240101-20240131"}))
    assert uid not in _uids(reader.get("/dicomweb/studies", {"StudyDate": "20230101-20231231"}))
    assert uid in _uids(
        reader.get("/dicomweb/studies", {"ModalitiesInStudy": "CT", "AccessionNumber": "ACC-VIEW-1"})
    )
    assert uid in _uids(reader.get("/dicomweb/studies", {"StudyInstanceUID": f"1.2.3,{uid}"}))
    series = reader.get(f"/dicomweb/studies/{uid}/series", {"limit": 2, "offset": 1}).json()
    assert [s["00200011"]["Value"][0] for s in series] == [2, 3]


def test_it_refuses_media_types_it_cannot_produce(reader: Client, study: tuple[Case, str]) -> None:
    uid = study[1]
    assert reader.get("/dicomweb/studies", HTTP_ACCEPT="text/html").status_code == 406
    assert reader.get(f"/dicomweb/studies/{uid}/metadata", HTTP_ACCEPT="application/pdf").status_code == 406
    instance = reader.get(f"/dicomweb/studies/{uid}/instances").json()[0]
    url = instance["00081190"]["Value"][0].split("neuro.localhost")[-1]
    assert reader.get(f"{url}/rendered", HTTP_ACCEPT="image/webp").status_code == 406
    gif = reader.get(f"{url}/rendered", HTTP_ACCEPT="image/gif")
    assert gif.status_code == 200 and gif["Content-Type"] == "image/gif"
    assert Image.open(io.BytesIO(gif.content)).format == "GIF"


def test_it_answers_searches_and_metadata_in_xml(reader: Client, study: tuple[Case, str]) -> None:
    uid = study[1]
    accept = 'multipart/related; type="application/dicom+xml"'
    found = reader.get("/dicomweb/studies", {"StudyInstanceUID": uid}, HTTP_ACCEPT=accept)
    assert found["Content-Type"].startswith('multipart/related; type="application/dicom+xml"')
    (document,) = _parts(found)
    root = ElementTree.fromstring(document)  # noqa: S314 (our own answer, in a test)
    ns = {"d": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
    name = root.find("d:DicomAttribute[@keyword='PatientName']/d:PersonName/d:Alphabetic/d:FamilyName", ns)
    assert name is not None and name.text == "Test"
    metadata = reader.get(f"/dicomweb/studies/{uid}/metadata", HTTP_ACCEPT=accept)
    assert len(_parts(metadata)) == 8  # one document per instance


def test_it_renders_studies_and_series(reader: Client, study: tuple[Case, str]) -> None:
    uid = study[1]
    series = reader.get(f"/dicomweb/studies/{uid}/series").json()[0]["0020000E"]["Value"][0]
    rendered = reader.get(f"/dicomweb/studies/{uid}/series/{series}/rendered", HTTP_ACCEPT="image/jpeg")
    assert rendered.status_code == 200
    pictures = _parts(rendered)
    assert len(pictures) == 3
    assert all(Image.open(io.BytesIO(picture)).format == "JPEG" for picture in pictures)
    whole = reader.get(f"/dicomweb/studies/{uid}/rendered", HTTP_ACCEPT='multipart/related; type="image/png"')
    assert rendered.status_code == 200 and len(_parts(whole)) == 7  # the video cannot be drawn: 7 of 8


def test_it_answers_head_without_a_body(reader: Client, study: tuple[Case, str]) -> None:
    response = reader.head(f"/dicomweb/studies/{study[1]}/metadata")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    assert response.content == b""


def test_it_answers_cors_only_for_allowed_origins(reader: Client, study: tuple[Case, str]) -> None:
    preflight: dict[str, str] = {
        "HTTP_ORIGIN": "https://pacs.example.org",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
    }
    assert reader.options("/dicomweb/studies", **preflight).status_code == 403  # type: ignore[arg-type]
    with override_settings(DICOMWEB_CORS_ORIGINS=["https://pacs.example.org"]):
        allowed = reader.options("/dicomweb/studies", **preflight)  # type: ignore[arg-type]
        assert allowed.status_code == 204
        assert allowed["Access-Control-Allow-Origin"] == "https://pacs.example.org"
        assert "Authorization" in allowed["Access-Control-Allow-Headers"]
        read = reader.get("/dicomweb/studies", HTTP_ORIGIN="https://pacs.example.org")
        assert read["Access-Control-Allow-Origin"] == "https://pacs.example.org"
        assert "Access-Control-Allow-Credentials" not in read  # sessions never cross origins
        other = reader.get("/dicomweb/studies", HTTP_ORIGIN="https://evil.example.org")
        assert "Access-Control-Allow-Origin" not in other


# --- integration keys --------------------------------------------------------------------------


def _admin() -> Client:
    client = Client(HTTP_HOST=HOST)
    staff_force_login(client, "admin@neuro.example.com")
    return client


def _new_key(client: Client, name: str = "Radiology PACS") -> str:
    page = client.post("/settings/integrations/", {"name": name, "scopes": ["dicomweb.read"]})
    assert page.status_code == 200
    return re.search(r'data-testid="secret">(srk_[^<]+)<', page.content.decode())[1]  # type: ignore[index]


def test_it_lets_a_machine_client_read_with_an_integration_key(study: tuple[Case, str]) -> None:
    case, uid = study
    secret = _new_key(_admin())
    machine = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert uid in _uids(machine.get("/dicomweb/studies"))
    assert machine.get(f"/dicomweb/studies/{uid}/metadata").status_code == 200
    with schema_context("neuro"):
        event = AuditEvent.objects.filter(action="dicomweb.metadata", case_id=case.pk).latest("id")
        assert event.actor_id is None and event.detail["credential_name"] == "Radiology PACS"
        key = IntegrationCredential.objects.get(name="Radiology PACS")
        assert key.secret_sha256 not in secret and secret not in str(key.__dict__)  # only the hash is kept
        assert key.last_used_at is not None


def test_it_refuses_revoked_unknown_and_draft_reaching_keys(study: tuple[Case, str]) -> None:
    admin = _admin()
    secret = _new_key(admin, "Old clinic")
    with schema_context("neuro"):
        key = IntegrationCredential.objects.get(name="Old clinic")
        draft = Case.objects.create(owner=User.objects.get(email="patient@neuro.example.com"))
    assert admin.post(f"/settings/integrations/{key.public_id}/revoke").status_code == 302
    for token in (secret, "srk_unknown", "not-even-ours"):
        refused = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {token}").get("/dicomweb/studies")
        assert refused.status_code == 401 and refused.content.decode() == BAD_CREDENTIAL
    live = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {_new_key(admin, 'New clinic')}")
    assert live.get(f"/dicomweb/cases/{draft.public_id}/studies").status_code == 404  # never a draft


def test_it_shows_the_keys_page_to_admins_only(study: tuple[Case, str], cancer: Institution) -> None:
    for email in (
        "coordinator@neuro.example.com",
        "reviewer1@neuro.example.com",
        "patient@neuro.example.com",
    ):
        client = Client(HTTP_HOST=HOST)
        staff_force_login(client, email)
        assert client.get("/settings/integrations/").status_code == 403
        assert (
            client.post("/settings/integrations/", {"name": "x", "scopes": ["dicomweb.read"]}).status_code
            == 403
        )
    assert Client(HTTP_HOST=HOST).get("/settings/integrations/").status_code == 302  # to sign in
    # A key of one institution opens nothing at another.
    secret = _new_key(_admin())
    other = Client(HTTP_HOST="cancer.localhost", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert other.get("/dicomweb/studies").status_code == 401
