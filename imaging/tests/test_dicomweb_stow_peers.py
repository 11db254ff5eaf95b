"""Real clients store into a case over STOW-RS, through a live gunicorn: dicomweb-client's
``store_instances``, and Orthanc (its DICOMweb plugin) sending a study it holds."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone
from django_tenants.utils import schema_context
from pydicom import dcmread

from accounts.models import User
from imaging.integrations.credentials import credential_create
from imaging.models import Instance, IntegrationCredential
from imaging.tests.test_dicomweb_client import _InstitutionHost
from imaging.tests.test_dicomweb_stow import instances, multipart, part10
from intake.models import Case
from tests.dicomweb_cases import case_remove
from tests.live import LiveServer
from tests.peers.orthanc import orthanc_running

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def target(live_platform: LiveServer, django_db_blocker: Any) -> Iterator[tuple[Case, str]]:
    """An empty submitted case and a write key, committed before any test's transaction starts
    (the live server is another process and must see them)."""
    with django_db_blocker.unblock(), schema_context("neuro"), transaction.atomic():
        case = Case.objects.create(
            owner=User.objects.get(email="patient@neuro.example.com"),
            status=Case.Status.SUBMITTED,
            number=f"STOW-{uuid.uuid4().hex[:8].upper()}",
            submitted_at=timezone.now(),
        )
        request = RequestFactory().post("/", HTTP_HOST="neuro.localhost")
        request.user = User.objects.get(email="admin@neuro.example.com")
        credential, secret = credential_create(
            request=request, name="Referring clinic", scopes=[IntegrationCredential.Scope.DICOMWEB_WRITE]
        )
    yield case, secret
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)
        with schema_context("neuro"):
            IntegrationCredential.objects.filter(pk=credential.pk).delete()


def _held(django_db_blocker: Any, case: Case) -> list[str]:
    with django_db_blocker.unblock(), schema_context("neuro"):
        return sorted(
            Instance.objects.filter(series__study__case=case).values_list("sop_instance_uid", flat=True)
        )


def test_dicomweb_client_stores_into_a_case(
    live_platform: LiveServer, target: tuple[Case, str], django_db_blocker: Any
) -> None:
    case, secret = target
    session = requests.Session()
    host = f"neuro.localhost:{live_platform.port}"
    session.mount("http://127.0.0.1", _InstitutionHost(host))
    session.headers["Authorization"] = f"Bearer {secret}"
    client = DICOMwebClient(
        url=f"http://127.0.0.1:{live_platform.port}/dicomweb/cases/{case.public_id}", session=session
    )
    datasets = instances(3)
    answer = client.store_instances(datasets)
    stored = [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence]
    assert sorted(stored) == sorted(ds.SOPInstanceUID for ds in datasets)
    assert set(stored) <= set(_held(django_db_blocker, case))


def test_a_chunked_body_is_read_whole(
    live_platform: LiveServer, target: tuple[Case, str], django_db_blocker: Any
) -> None:
    """A client that streams its body without a Content-Length (Transfer-Encoding: chunked)."""
    case, secret = target
    [ds] = instances(1)
    body, content_type = multipart([("application/dicom", part10(ds))])
    response = requests.post(
        f"http://127.0.0.1:{live_platform.port}/dicomweb/studies?case={case.number}",
        data=iter([body[:1000], body[1000:]]),
        headers={
            "Host": f"neuro.localhost:{live_platform.port}",
            "Authorization": f"Bearer {secret}",
            "Content-Type": content_type,
        },
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert ds.SOPInstanceUID in _held(django_db_blocker, case)


def test_orthanc_sends_a_study_into_a_case(
    live_platform: LiveServer, target: tuple[Case, str], django_db_blocker: Any
) -> None:
    case, secret = target
    datasets = instances(2)
    server = {
        "Url": f"http://neuro.localhost:{live_platform.port}/dicomweb/cases/{case.public_id}/",
        "HttpHeaders": {"Authorization": f"Bearer {secret}"},
    }
    with orthanc_running(dicomweb_servers={"secondread": server}) as orthanc:
        for ds in datasets:
            request = requests.post(orthanc.url("/instances"), data=part10(ds), timeout=60)
            assert request.status_code == 200
        [study_id] = orthanc.get("/studies")
        orthanc.post("/dicom-web/servers/secondread/stow", {"Resources": [study_id]})
    held = _held(django_db_blocker, case)
    assert {ds.SOPInstanceUID for ds in datasets} <= set(held)
    with django_db_blocker.unblock(), schema_context("neuro"):
        first = Instance.objects.get(sop_instance_uid=datasets[0].SOPInstanceUID)
        from storage.tenant import tenant_storage

        stored = dcmread(io.BytesIO(tenant_storage("neuro").read_bytes(first.storage_key)))
    assert stored.StudyInstanceUID == datasets[0].StudyInstanceUID
