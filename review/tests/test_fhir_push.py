"""Released opinions are pushed to the institution's FHIR server (a local FHIR double that
validates every resource, at the network boundary), through the outbox: once, with retries,
and failures an admin must fix are listed for them with a retry. Only admins set the server."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client, TestCase
from django.utils import timezone
from django.utils.html import escape
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from outbox.models import OutboxMessage
from outbox.services import message_deliver
from review import fhir_client
from review import fhir_push as push
from review.models import CaseAssignment, FhirEndpoint, Opinion
from review.services import opinion_draft_save, opinion_release, opinion_sign
from tenants.models import Institution
from tests.cases import user_in
from tests.fhir_double import FhirDouble
from tests.staff import staff_force_login

pytestmark = pytest.mark.django_db

HOST = "neuro.localhost"
SECRET = "client-secret-never-shown"
OPINION = {
    "question_restated": "Is surgery needed?",
    "findings": "A 2 cm lesion in the left frontal lobe.",
    "impression": "Most consistent with a low-grade glioma.",
    "agreement": "agree",
    "recommendation": "surgery",
    "comments": "Discuss resection with your neurosurgeon.",
}


@pytest.fixture
def server() -> Iterator[FhirDouble]:
    double = FhirDouble(client_id="secondread", client_secret=SECRET).start()
    yield double
    double.stop()


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Deliveries the outbox would queue (the tests deliver them here, one call at a time)."""
    from outbox import services

    queued: list[int] = []
    monkeypatch.setattr(services, "delivery_queue", lambda *, message_id, schema: queued.append(message_id))
    return queued


def _admin() -> Client:
    client = Client(HTTP_HOST=HOST)
    staff_force_login(client, "admin@neuro.example.com")
    return client


def _configure(client: Client, server: FhirDouble, *, secret: str = SECRET, **extra: str) -> Any:
    data = {
        "base_url": f"{server.url}/fhir",
        "auth": "client_credentials",
        "token_url": f"{server.url}/token",
        "client_id": "secondread",
        "scope": "system/*.write",
        "secret": secret,
        "enabled": "on",
        **extra,
    }
    return client.post("/settings/fhir/", data)


def _release(neuro: Institution, make_case: Callable[..., Case]) -> Opinion:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        reviewer = user_in(neuro, "reviewer1@neuro.example.com")
        CaseAssignment.objects.create(case=case, reviewer=reviewer, assigned_at=case.created)
        opinion_draft_save(case=case, author=reviewer, data=OPINION)
        with TestCase.captureOnCommitCallbacks(execute=True):
            opinion_sign(case=case, signer=reviewer, secret=DEMO_PASSWORD, institution=neuro)
            opinion_release(case=case, by=user_in(neuro, "coordinator@neuro.example.com"))
        return Opinion.objects.select_related("case").get(case=case)


def _message() -> OutboxMessage:
    with schema_context("neuro"):
        return OutboxMessage.objects.get(kind=push.OUTBOX_KIND)


def _deliver(message: OutboxMessage) -> OutboxMessage:
    with schema_context("neuro"):
        OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
        message_deliver(message_id=message.pk)
        message.refresh_from_db()
    return message


def test_it_pushes_a_released_opinion_once_as_valid_fhir(
    neuro: Institution, make_case: Callable[..., Case], server: FhirDouble
) -> None:
    admin = _admin()
    assert _configure(admin, server).status_code == 302
    page = admin.get("/settings/fhir/").content.decode()
    assert f"{server.url}/fhir" in page and SECRET not in page
    with schema_context("neuro"):
        assert SECRET not in FhirEndpoint.objects.get().secret_encrypted
    checked = admin.post("/settings/fhir/check", follow=True).content.decode()
    assert escape(push.CHECK_OK.format(version="4.0.1")) in checked
    server.requests.clear()
    opinion = _release(neuro, make_case)
    message = _deliver(_message())
    assert message.status == OutboxMessage.Status.DELIVERED

    # The token came from client credentials; the transaction carried it.
    [token_request, fhir_request] = server.requests
    assert token_request.path == "/token" and fhir_request.headers["Authorization"].startswith("Bearer ")
    [report] = server.of_type("DiagnosticReport")
    [patient] = server.of_type("Patient")
    [study] = server.of_type("ImagingStudy")
    [document] = server.of_type("DocumentReference")
    assert report["status"] == "final" and report["conclusion"].startswith("Most consistent")
    assert report["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{study['id']}"}]
    assert study["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert patient["name"][0]["text"] == "Jane Testpatient"
    assert base64.b64decode(report["presentedForm"][0]["data"])[:4] == b"%PDF"
    attachment = document["content"][0]["attachment"]
    assert (
        attachment["contentType"] == "application/pdf" and base64.b64decode(attachment["data"])[:4] == b"%PDF"
    )
    assert document["context"]["related"] == [{"reference": f"DiagnosticReport/{report['id']}"}]
    assert any(
        i["system"].endswith("/opinions") and i["value"] == str(opinion.public_id)
        for i in report["identifier"]
    )

    # Delivered again (at least once: a worker died before the outbox recorded it): nothing new.
    with schema_context("neuro"):
        push.fhir_push_deliver(message.payload)
        assert AuditEvent.objects.filter(action="fhir.push", case=opinion.case).count() == 2
    assert [len(server.of_type(kind)) for kind in ("DiagnosticReport", "Patient", "DocumentReference")] == [
        1,
        1,
        1,
    ]
    last = json.loads(server.requests[-1].body)
    requests = {entry["resource"]["resourceType"]: entry["request"] for entry in last["entry"]}
    assert requests["Patient"]["ifNoneExist"].startswith("identifier=")
    assert requests["ImagingStudy"]["ifNoneExist"].startswith("identifier=urn%3Adicom%3Auid|")
    assert requests["DiagnosticReport"]["method"] == "PUT"
    assert requests["DiagnosticReport"]["url"].startswith("DiagnosticReport?identifier=")


def test_an_addendum_after_release_replaces_the_report_on_the_server(
    neuro: Institution, make_case: Callable[..., Case], server: FhirDouble
) -> None:
    from review.addenda import opinion_addendum_sign

    _configure(_admin(), server)
    opinion = _release(neuro, make_case)
    _deliver(_message())
    [first_pdf] = [d["content"][0]["attachment"]["data"] for d in server.of_type("DocumentReference")]
    with schema_context("neuro"):
        reviewer = user_in(neuro, "reviewer1@neuro.example.com")
        with TestCase.captureOnCommitCallbacks(execute=True):
            opinion_addendum_sign(
                case=opinion.case,
                signer=reviewer,
                secret=DEMO_PASSWORD,
                text="MRI in 3 months.",
                institution=neuro,
            )
        addendum_message = OutboxMessage.objects.get(kind=push.OUTBOX_KIND, dedupe_key__contains="addendum")
    assert "addendum" in addendum_message.summary
    assert _deliver(addendum_message).status == OutboxMessage.Status.DELIVERED
    [report] = server.of_type("DiagnosticReport")  # replaced, not a second one
    [document] = server.of_type("DocumentReference")
    assert report["status"] == "appended"
    assert document["content"][0]["attachment"]["data"] != first_pdf
    assert len(server.of_type("Patient")) == 1 and len(server.of_type("ImagingStudy")) == 1
    assert document["context"]["related"] == [{"reference": f"DiagnosticReport/{report['id']}"}]


def test_a_server_that_is_down_is_tried_again(
    neuro: Institution, make_case: Callable[..., Case], server: FhirDouble
) -> None:
    server.bearer, server.client_id = "static-token", ""
    admin = _admin()
    response = admin.post(
        "/settings/fhir/",
        {"base_url": f"{server.url}/fhir", "auth": "bearer", "secret": "static-token", "enabled": "on"},
    )
    assert response.status_code == 302
    _release(neuro, make_case)
    server.fail_with(503)
    message = _deliver(_message())
    assert message.status == OutboxMessage.Status.PENDING and message.attempts == 1
    assert message.last_error == fhir_client.BUSY.format(status=503)
    assert server.of_type("DiagnosticReport") == []
    message = _deliver(message)
    assert message.status == OutboxMessage.Status.DELIVERED and len(server.of_type("DiagnosticReport")) == 1
    assert server.requests[-1].headers["Authorization"] == "Bearer static-token"


def test_refused_credentials_are_listed_for_the_admin_who_fixes_them_and_retries(
    neuro: Institution, make_case: Callable[..., Case], server: FhirDouble, no_broker: list[int]
) -> None:
    admin = _admin()
    _configure(admin, server, secret="a-wrong-secret")
    checked = admin.post("/settings/fhir/check", follow=True).content.decode()
    assert escape(fhir_client.TOKEN_REFUSED.format(status=401)) in checked
    opinion = _release(neuro, make_case)
    message = _deliver(_message())
    # Retrying cannot help until the admin changes something: failed at once, shown with why.
    assert message.status == OutboxMessage.Status.FAILED and message.attempts == 1
    assert message.last_error == fhir_client.TOKEN_REFUSED.format(status=401)
    failures = admin.get("/settings/emails/").content.decode()
    assert f"Send the opinion of case {opinion.case.number} to the FHIR server" in failures
    assert escape(fhir_client.TOKEN_REFUSED.format(status=401)) in failures
    assert 'data-testid="fhir-failing">1 now' in admin.get("/settings/fhir/").content.decode()

    _configure(admin, server)  # the right secret
    with TestCase.captureOnCommitCallbacks(execute=True):
        admin.post(f"/settings/emails/{message.pk}/retry")
    assert no_broker[-1] == message.pk
    assert _deliver(message).status == OutboxMessage.Status.DELIVERED
    assert len(server.of_type("DiagnosticReport")) == 1


def test_a_refused_report_names_the_issue_codes_not_the_servers_text(
    neuro: Institution, make_case: Callable[..., Case], server: FhirDouble
) -> None:
    server.client_id = ""  # the double takes anyone; it refuses what is not a transaction
    admin = _admin()
    admin.post("/settings/fhir/", {"base_url": f"{server.url}/nowhere", "auth": "none", "enabled": "on"})
    _release(neuro, make_case)
    message = _deliver(_message())
    assert message.status == OutboxMessage.Status.FAILED
    assert message.last_error == fhir_client.REFUSED.format(status=404, codes=": not-found")


def test_nothing_is_pushed_without_a_server_or_with_sending_off(
    neuro: Institution, make_case: Callable[..., Case], server: FhirDouble
) -> None:
    _release(neuro, make_case)
    admin = _admin()
    assert _configure(admin, server, enabled="").status_code == 302
    assert escape(push.SAVED_OFF) in admin.get("/settings/fhir/").content.decode()
    _release(neuro, make_case)
    with schema_context("neuro"):
        assert not OutboxMessage.objects.filter(kind=push.OUTBOX_KIND).exists()


def test_it_refuses_bad_settings_in_words_and_keeps_the_stored_secret(
    neuro: Institution, server: FhirDouble
) -> None:
    admin = _admin()
    cases = [
        ({"base_url": "ftp://ehr", "auth": "none"}, push.URL_INVALID),
        ({"base_url": "https://ehr.example.org/fhir", "auth": "magic"}, push.AUTH_INVALID),
        ({"base_url": "https://ehr.example.org/fhir", "auth": "bearer"}, push.TOKEN_REQUIRED),
        (
            {
                "base_url": "https://ehr.example.org/fhir",
                "auth": "client_credentials",
                "client_id": "x",
                "secret": "s",
            },
            push.CLIENT_INCOMPLETE,
        ),
    ]
    for data, message in cases:
        response = admin.post("/settings/fhir/", data)
        assert response.status_code == 400 and escape(message) in response.content.decode(), data
    with schema_context("neuro"):
        assert not FhirEndpoint.objects.exists()
    _configure(admin, server)
    assert _configure(admin, server, secret="", scope="").status_code == 302  # blank: keep it
    with schema_context("neuro"):
        endpoint = FhirEndpoint.objects.get()
        assert push._server(endpoint).secret == SECRET
    response = admin.post("/settings/fhir/remove", follow=True)
    assert escape(push.REMOVED) in response.content.decode()
    with schema_context("neuro"):
        assert not FhirEndpoint.objects.exists()
        actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"fhir.endpoint_save", "fhir.endpoint_remove"} <= actions


def test_outsiders_cannot_see_or_set_the_fhir_server(
    neuro: Institution, cancer: Institution, server: FhirDouble
) -> None:
    _configure(_admin(), server)
    for role in ("coordinator", "reviewer1", "patient"):
        client = Client(HTTP_HOST=HOST)
        staff_force_login(client, f"{role}@neuro.example.com")
        assert client.get("/settings/fhir/").status_code == 403
        assert (
            client.post("/settings/fhir/", {"base_url": "https://evil.example", "auth": "none"}).status_code
            == 403
        )
        assert client.post("/settings/fhir/remove").status_code == 403
        assert client.post("/settings/fhir/check").status_code == 403
    for path in ("/settings/fhir/remove", "/settings/fhir/check"):
        logged_out = Client(HTTP_HOST=HOST).post(path)
        assert logged_out.status_code == 302 and "/accounts/login/" in logged_out["Location"]
    other = Client(HTTP_HOST="cancer.localhost")
    staff_force_login(other, "admin@cancer.example.com")
    page = other.get("/settings/fhir/").content.decode()
    assert 'data-testid="fhir-none"' in page and server.url not in page
    other.post("/settings/fhir/remove")
    assert escape(push.CHECK_NOTHING) in other.post("/settings/fhir/check", follow=True).content.decode()
    with schema_context("neuro"):
        endpoint = FhirEndpoint.objects.get()
    assert endpoint.base_url == f"{server.url}/fhir"
