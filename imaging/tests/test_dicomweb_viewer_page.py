"""The standalone viewer page: staff who may see the case and its own patient; nobody else."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from imaging.dicomweb.qido import BAD_DATE
from imaging.tests.test_dicomweb_access import _another_patient
from intake.models import Case
from tenants.models import Institution
from tests.dicomweb_cases import case_with_study, demo_study
from tests.staff import staff_force_login


@pytest.fixture
def case(neuro: Institution) -> Case:
    _, series = demo_study(ct_slices=2)
    return case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=series[:1],
        reviewer_email="reviewer1@neuro.example.com",
    )


def _signed_in(email: str, host: str = "neuro.localhost", schema: str = "neuro") -> Client:
    client = Client(HTTP_HOST=host)
    staff_force_login(client, email)
    return client


def _audit(case: Case) -> list[tuple[str, bool]]:
    with schema_context("neuro"):
        return [
            (e.actor_email, e.allowed)
            for e in AuditEvent.objects.filter(case_id=case.pk, action="viewer.open")
        ]


def test_it_shows_the_viewer_to_the_assigned_reviewer_and_the_patient(case: Case) -> None:
    for email in ("reviewer1@neuro.example.com", "patient@neuro.example.com"):
        page = _signed_in(email).get(f"/workspace/viewer/{case.public_id}/")
        assert page.status_code == 200
        html = page.content.decode()
        assert f'data-studies-url="/dicomweb/cases/{case.public_id}/studies"' in html
        assert "dist/viewer.js" in html
    assert sorted(_audit(case)) == [
        ("patient@neuro.example.com", True),
        ("reviewer1@neuro.example.com", True),
    ]


def test_it_carries_the_series_list_and_first_image_metadata_in_the_page(case: Case) -> None:
    page = _signed_in("reviewer1@neuro.example.com").get(f"/workspace/viewer/{case.public_id}/")
    html = page.content.decode()
    found = re.search(r'<script id="sr-viewer-boot-[0-9a-f]+" type="application/json">(.*?)</script>', html)
    assert found, "no viewer JSON in the page"
    boot = json.loads(found[1])
    with schema_context("neuro"):
        study = case.studies.get()
        series = study.series.get()
        uids = list(series.instances.order_by("instance_number").values_list("sop_instance_uid", flat=True))
    assert [s["uid"] for s in boot["studies"][0]["series"]] == [series.series_instance_uid]
    assert boot["studies"][0]["series"][0]["count"] == 2
    assert [uid for uid, _ in boot["first"]["instances"]] == uids
    # The first instance's own metadata (as WADO-RS gives it) and the frame the page asks for.
    assert boot["first"]["metadata"]["00080018"]["Value"] == [uids[0]]
    assert boot["first"]["metadata"]["00280010"]["Value"][0] > 0
    frame_url = boot["first"]["frameUrl"]
    assert frame_url.endswith(f"/instances/{uids[0]}/frames/1") and frame_url in html
    assert frame_url.startswith(f"/dicomweb/cases/{case.public_id}/studies/{study.study_instance_uid}/")


def test_it_refuses_outsiders_and_audits_them(case: Case, cancer: Institution) -> None:
    url = f"/workspace/viewer/{case.public_id}/"
    signed_out = Client(HTTP_HOST="neuro.localhost").get(url)
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"]
    assert _signed_in(_another_patient()).get(url).status_code == 404
    assert _signed_in("reviewer2@neuro.example.com").get(url).status_code == 404
    other = _signed_in("coordinator@cancer.example.com", host="cancer.localhost", schema="cancer")
    assert other.get(url).status_code == 404
    assert [allowed for _, allowed in _audit(case)] == [False, False, False]


def test_it_explains_a_malformed_search_and_a_missing_frame(case: Case) -> None:
    client = _signed_in("patient@neuro.example.com")
    bad = client.get("/dicomweb/studies", {"StudyDate": "last week"})
    assert bad.status_code == 400 and bad.content.decode() == BAD_DATE
    with schema_context("neuro"):
        instance = case.studies.get().series.get().instances.first()
        assert instance is not None
        study_uid = case.studies.get().study_instance_uid
        series_uid = instance.series.series_instance_uid
    base = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}"
    assert client.get(f"{base}/frames/2").status_code == 404
    assert client.get(f"{base}/frames/x").status_code == 400
    refused = client.get(f"{base}/frames/1", HTTP_ACCEPT='multipart/related; type="image/jp2"')
    assert refused.status_code == 406
    # Matching on an attribute no row keeps is not refused: the Warning header names it.
    ignored = client.get("/dicomweb/studies", {"DeviceSerialNumber": "X"})
    assert ignored.status_code == 200 and "DeviceSerialNumber" in ignored["Warning"]
