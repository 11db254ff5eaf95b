"""A real PACS pulls from us: Orthanc, with SecondRead configured as a remote DICOMweb server
(an integration key in its Authorization header), searches and retrieves a case's study over
QIDO-RS / WADO-RS and stores it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import RequestFactory
from django_tenants.utils import schema_context

from accounts.models import User
from imaging.integrations.credentials import credential_create
from imaging.models import IntegrationCredential
from intake.models import Case
from tests.dicomweb_cases import SeriesFiles, case_remove, case_with_study, demo_study
from tests.live import LiveServer
from tests.peers.orthanc import orthanc_running

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def shared(
    live_platform: LiveServer, django_db_blocker: Any
) -> Iterator[tuple[Case, str, list[SeriesFiles], str]]:
    with django_db_blocker.unblock():
        study_uid, series = demo_study(ct_slices=4)
        case = case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=series)
        with schema_context("neuro"):
            request = RequestFactory().post("/", HTTP_HOST="neuro.localhost")
            request.user = User.objects.get(email="admin@neuro.example.com")
            credential, secret = credential_create(
                request=request, name="Hospital PACS", scopes=[IntegrationCredential.Scope.DICOMWEB_READ]
            )
    yield case, study_uid, series, secret
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)
        with schema_context("neuro"):
            IntegrationCredential.objects.filter(pk=credential.pk).delete()


def test_it_lets_orthanc_find_and_pull_a_study(
    live_platform: LiveServer, shared: tuple[Case, str, list[SeriesFiles], str]
) -> None:
    _, study_uid, series, secret = shared
    server = {
        "Url": f"http://neuro.localhost:{live_platform.port}/dicomweb/",
        "HttpHeaders": {"Authorization": f"Bearer {secret}"},
    }
    with orthanc_running(dicomweb_servers={"secondread": server}) as orthanc:
        found = orthanc.post(
            "/dicom-web/servers/secondread/get",
            {"Uri": "/studies", "Arguments": {"PatientName": "test*", "StudyInstanceUID": study_uid}},
        )
        studies = found if isinstance(found, list) else json.loads(found)
        assert [s["0020000D"]["Value"][0] for s in studies] == [study_uid]
        orthanc.post("/dicom-web/servers/secondread/retrieve", {"Resources": [{"Study": study_uid}]})
        stored = orthanc.get("/studies?expand")
        assert [s["MainDicomTags"]["StudyInstanceUID"] for s in stored] == [study_uid]
        expected = sum(len(group.datasets) for group in series)
        assert len(orthanc.get(f"/studies/{stored[0]['ID']}/instances")) == expected
