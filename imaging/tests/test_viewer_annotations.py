"""Measurements and key images saved from the viewer: staff of the case only, CSRF-checked,
validated before anything is stored, audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from imaging.models import ImageAnnotation
from imaging.tests.test_dicomweb_access import _another_patient
from imaging.viewer.annotations import BAD_KIND, BAD_POINTS, UNKNOWN_IMAGE
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


def _client(email: str, host: str = "neuro.localhost", csrf: bool = False) -> Client:
    client = Client(HTTP_HOST=host, enforce_csrf_checks=csrf)
    staff_force_login(client, email)
    return client


def _sop(case: Case) -> str:
    with schema_context("neuro"):
        instance = case.studies.get().series.get().instances.order_by("instance_number").first()
        assert instance is not None
        return instance.sop_instance_uid


def _post(client: Client, case: Case, body: Any, **extra: Any) -> Any:
    return client.post(
        f"/workspace/viewer/{case.public_id}/annotations/",
        json.dumps(body),
        content_type="application/json",
        **extra,
    )


def _marks(case: Case) -> list[ImageAnnotation]:
    with schema_context("neuro"):
        return list(ImageAnnotation.objects.filter(case=case))


def _audit(case: Case, prefix: str = "viewer.annotation") -> list[tuple[str, str, bool]]:
    with schema_context("neuro"):
        return [
            (e.action, e.actor_email, e.allowed)
            for e in AuditEvent.objects.filter(case_id=case.pk, action__startswith=prefix).order_by("seq")
        ]


def test_it_saves_lists_and_deletes_a_reviewers_measurement(case: Case) -> None:
    client = _client("reviewer1@neuro.example.com")
    sop = _sop(case)
    made = _post(
        client,
        case,
        {
            "kind": "angle",
            "sopInstanceUid": sop,
            "frame": 1,
            "points": [[10, 10], [60, 60], [10, 90]],
            "label": "Angle 45.0°",
        },
    )
    assert made.status_code == 201, made.content
    key = _post(client, case, {"kind": "key_image", "sopInstanceUid": sop, "window": [40, 400]})
    assert key.status_code == 201
    listed = client.get(f"/workspace/viewer/{case.public_id}/annotations/").json()["annotations"]
    assert [(a["kind"], a["label"], a["window"]) for a in listed] == [
        ("angle", "Angle 45.0°", None),
        ("key_image", "", [40.0, 400.0]),
    ]
    assert listed[0]["sopInstanceUid"] == sop and listed[0]["points"][1] == [60.0, 60.0]
    # The coordinator sees them too, and may remove one.
    coordinator = _client("coordinator@neuro.example.com")
    gone = coordinator.delete(f"/workspace/viewer/{case.public_id}/annotations/{listed[0]['id']}/")
    assert gone.status_code == 204
    assert [m.kind for m in _marks(case)] == ["key_image"]
    assert [(action, allowed) for action, _, allowed in _audit(case, "viewer.annotation")] == [
        ("viewer.annotation.create", True),
        ("viewer.annotation.create", True),
        ("viewer.annotations.list", True),
        ("viewer.annotation.delete", True),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "scribble", "points": []}, BAD_KIND),
        ({"kind": "length", "points": [[1, 2]]}, BAD_POINTS),
        ({"kind": "length", "points": [[1, 2], ["x", 3]]}, BAD_POINTS),
        ({"kind": "length", "points": [[1, 2], [5000, 3]]}, BAD_POINTS),  # far off the 128-pixel image
        ({"kind": "length", "points": [[1, 2], [3, 4]], "sopInstanceUid": "1.2.3"}, UNKNOWN_IMAGE),
    ],
)
def test_it_refuses_marks_that_do_not_fit_the_image(case: Case, body: dict[str, Any], message: str) -> None:
    body.setdefault("sopInstanceUid", _sop(case))
    answer = _post(_client("reviewer1@neuro.example.com"), case, body)
    assert answer.status_code == 400
    assert answer.json()["error"] == message
    assert _marks(case) == []


def test_it_needs_the_csrf_token(case: Case) -> None:
    client = _client("reviewer1@neuro.example.com", csrf=True)
    body = {"kind": "key_image", "sopInstanceUid": _sop(case)}
    assert _post(client, case, body).status_code == 403
    client.get(f"/workspace/viewer/{case.public_id}/")  # the page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert _post(client, case, body, HTTP_X_CSRFTOKEN=token).status_code == 201


def test_it_refuses_outsiders_and_audits_them(case: Case, cancer: Institution) -> None:
    url = f"/workspace/viewer/{case.public_id}/annotations/"
    body = {"kind": "key_image", "sopInstanceUid": _sop(case)}
    assert Client(HTTP_HOST="neuro.localhost").get(url).status_code == 401
    assert _post(Client(HTTP_HOST="neuro.localhost"), case, body).status_code == 401
    # The case's own patient sees the images, never the staff's marks.
    patient = _client("patient@neuro.example.com")
    assert patient.get(url).status_code == 403
    assert _post(patient, case, body).status_code == 403
    assert _client(_another_patient()).get(url).status_code == 404
    assert _post(_client("reviewer2@neuro.example.com"), case, body).status_code == 404
    other = _client("coordinator@cancer.example.com", host="cancer.localhost")
    assert other.get(url).status_code == 404
    assert _marks(case) == []
    assert [allowed for _, _, allowed in _audit(case, "viewer.annotation")] == [False, False, False, False]


def test_it_lets_no_outsider_remove_a_mark(case: Case) -> None:
    made = _post(
        _client("reviewer1@neuro.example.com"), case, {"kind": "key_image", "sopInstanceUid": _sop(case)}
    )
    url = f"/workspace/viewer/{case.public_id}/annotations/{made.json()['id']}/"
    assert Client(HTTP_HOST="neuro.localhost").delete(url).status_code == 401
    assert _client("patient@neuro.example.com").delete(url).status_code == 403
    assert _client("reviewer2@neuro.example.com").delete(url).status_code == 404
    assert _client("coordinator@cancer.example.com", host="cancer.localhost").delete(url).status_code == 404
    # A mark is removed only through its own case: another case's address does not reach it.
    _, series = demo_study(ct_slices=1)
    other = case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=series[:1],
        reviewer_email="reviewer1@neuro.example.com",
    )
    elsewhere = f"/workspace/viewer/{other.public_id}/annotations/{made.json()['id']}/"
    assert _client("reviewer1@neuro.example.com").delete(elsewhere).status_code == 404
    assert len(_marks(case)) == 1
    assert [a for a, _, allowed in _audit(case) if not allowed] == [
        "viewer.annotation.delete",
        "viewer.annotation.delete",
    ]
