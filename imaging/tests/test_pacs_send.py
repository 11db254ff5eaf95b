"""Send to PACS: admins set destinations, staff send a case's studies, a worker delivers them to
a real dcmtk storescp (C-STORE) with retries, and every step is visible and audited. (Orthanc as
the receiving PACS: test_pacs_send_orthanc.py.)"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from django_tenants.utils import schema_context
from pydicom import dcmread

from audit.models import AuditEvent
from imaging.models import Instance, PacsDestination, PacsSend
from imaging.pacs import destinations as destination_messages
from imaging.pacs import dimse
from imaging.pacs.sends import MAX_ATTEMPTS, OUTBOX_KIND, SendRetry, pacs_send_deliver
from intake.models import Case
from outbox.models import OutboxMessage
from outbox.services import message_deliver
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.dicomweb_cases import SeriesFiles, case_with_study, ct_stack, demo_study
from tests.live import free_port
from tests.peers.dcmtk import storescp_running
from tests.staff import staff_force_login

HOST = "neuro.localhost"


def dataset_bytes(data: bytes) -> bytes:
    """A Part 10 file's bytes after its file meta group (which each receiver writes anew)."""
    assert data[128:132] == b"DICM"
    (meta_length,) = struct.unpack("<I", data[140:144])
    return data[144 + meta_length :]


def _ct_case(slices: int = 3) -> Case:
    from pydicom.uid import generate_uid

    from tests.dicomweb_cases import _relabel

    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = [
        _relabel(ds, study_uid=study_uid, series_uid=series_uid, series_number=1, number=n)
        for n, ds in enumerate(ct_stack(slices), start=1)
    ]
    return case_with_study(
        schema_name="neuro", owner_email="patient@neuro.example.com", series=[SeriesFiles("CT", datasets)]
    )


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    yield _ct_case()


def _admin_client() -> Client:
    client = Client(HTTP_HOST=HOST)
    staff_force_login(client, "admin@neuro.example.com")
    return client


def _add_dimse(client: Client, port: int, called: str = "STORESCP") -> PacsDestination:
    response = client.post(
        "/settings/pacs/",
        {
            "name": "Radiology PACS",
            "kind": "dimse",
            "called_ae": called,
            "host": "127.0.0.1",
            "port": str(port),
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    with schema_context("neuro"):
        return PacsDestination.objects.get(name="Radiology PACS", removed_at__isnull=True)


def _send(
    client: Client, case: Case, destination: PacsDestination, *, deidentified: bool = False
) -> list[int]:
    data = {"destination": str(destination.public_id)}
    if deidentified:
        data["deidentified"] = "on"
    response = client.post(f"/workspace/pacs/{case.public_id}/send", data)
    assert response.status_code == 302
    with schema_context("neuro"):
        return list(PacsSend.objects.filter(case=case).values_list("pk", flat=True))


def _deliver(send_id: int) -> PacsSend | None:
    with schema_context("neuro"):
        return pacs_send_deliver(send_id=send_id)


def test_it_sends_a_case_to_storescp_byte_identical(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _admin_client()
    with storescp_running() as scp:
        destination = _add_dimse(client, scp.port)
        echo = client.post(f"/settings/pacs/{destination.public_id}/echo", follow=True)
        assert destination_messages.ECHO_OK in echo.content.decode()

        coordinator = Client(HTTP_HOST=HOST)
        staff_force_login(coordinator, "coordinator@neuro.example.com")
        page = coordinator.get(f"/workspace/cases/{case.public_id}/")
        assert "Radiology PACS" in page.content.decode()
        [send_id] = _send(coordinator, case, destination)
        sent = _deliver(send_id)
        assert sent is not None and sent.status == PacsSend.Status.SENT and sent.instances_sent == 3

        received = {dcmread(path).SOPInstanceUID: path.read_bytes() for path in scp.received()}
    with schema_context("neuro"):
        storage = tenant_storage("neuro")
        originals = {
            i.sop_instance_uid: storage.read_bytes(i.storage_key)
            for i in Instance.objects.filter(series__study__case=case)
        }
        assert set(received) == set(originals)
        for uid, data in originals.items():
            assert dataset_bytes(received[uid]) == dataset_bytes(data)
        actions = list(AuditEvent.objects.filter(case=case).values_list("action", flat=True))
        assert "pacs.send_request" in actions and "pacs.send_delivered" in actions
    assert "Sent: 3 images" in coordinator.get(f"/workspace/cases/{case.public_id}/").content.decode()


def test_it_retries_an_unreachable_pacs_then_gives_up(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _admin_client()
    destination = _add_dimse(client, free_port())  # nothing listens there
    echo = client.post(f"/settings/pacs/{destination.public_id}/echo", follow=True)
    assert escape(dimse.NOT_REACHED) in echo.content.decode()
    [send_id] = _send(client, case, destination)
    for attempt in range(1, MAX_ATTEMPTS):
        with pytest.raises(SendRetry):
            _deliver(send_id)
        with schema_context("neuro"):
            send = PacsSend.objects.get(pk=send_id)
        assert (send.status, send.attempts, send.error_message) == (
            PacsSend.Status.RETRYING,
            attempt,
            dimse.NOT_REACHED,
        )
    failed = _deliver(send_id)
    assert failed is not None and failed.status == PacsSend.Status.FAILED
    assert _deliver(send_id) is None  # a late duplicate delivery does nothing
    page = client.get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert "Failed" in page and dimse.NOT_REACHED in page
    with schema_context("neuro"):
        actions = list(AuditEvent.objects.filter(case=case).values_list("action", flat=True))
    assert actions.count("pacs.send_attempt_failed") == MAX_ATTEMPTS - 1 and "pacs.send_failed" in actions


def test_each_send_is_an_outbox_message_retried_while_the_pacs_is_down(case: Case) -> None:
    client = _admin_client()
    destination = _add_dimse(client, free_port())
    [send_id] = _send(client, case, destination)
    with schema_context("neuro"):
        send = PacsSend.objects.get(pk=send_id)
        message = OutboxMessage.objects.get(dedupe_key=f"pacs-send:{send.public_id}")
        assert message.kind == OUTBOX_KIND and message.payload == {"send_id": send_id}
        assert not message_deliver(message_id=message.pk)  # the deliverer raised: try later
        message.refresh_from_db()
        assert message.status == OutboxMessage.Status.PENDING and message.attempts == 1
        assert message.last_error == "SendRetry" and message.next_attempt_at > timezone.now()
        assert PacsSend.objects.get(pk=send_id).status == PacsSend.Status.RETRYING


def test_it_names_a_kind_of_image_the_pacs_refuses_and_does_not_retry(
    neuro: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, series = demo_study(ct_slices=1)
    compressed = [group for group in series if group.description == "MR JPEG 2000"]
    case = case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=compressed)
    client = _admin_client()
    with storescp_running() as scp:  # dcmtk's default: uncompressed only
        destination = _add_dimse(client, scp.port)
        [send_id] = _send(client, case, destination)
        failed = _deliver(send_id)
    assert failed is not None and failed.status == PacsSend.Status.FAILED
    assert "JPEG 2000" in failed.error_message and failed.attempts == 1


def test_a_failed_send_is_in_the_admins_failures_and_their_retry_sends_it(
    neuro: Institution, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outbox import services

    queued: list[int] = []
    monkeypatch.setattr(services, "delivery_queue", lambda *, message_id, schema: queued.append(message_id))
    _, series = demo_study(ct_slices=1)
    compressed = [group for group in series if group.description == "MR JPEG 2000"]
    case = case_with_study(schema_name="neuro", owner_email="patient@neuro.example.com", series=compressed)
    client = _admin_client()
    with storescp_running() as scp:  # uncompressed only: refuses JPEG 2000 for good
        destination = _add_dimse(client, scp.port)
        [send_id] = _send(client, case, destination)
        with schema_context("neuro"):
            message = OutboxMessage.objects.get(kind=OUTBOX_KIND)
            assert not message_deliver(message_id=message.pk)
            message.refresh_from_db()
            assert PacsSend.objects.get(pk=send_id).status == PacsSend.Status.FAILED
        assert message.status == OutboxMessage.Status.FAILED and message.attempts == 1
    assert "1 message could not be delivered" in client.get("/settings/").content.decode()
    page = client.get("/settings/emails/").content.decode()
    assert "Send a study to the PACS destination Radiology PACS" in page
    assert "JPEG 2000" in page and f"/settings/emails/{message.pk}/retry" in page
    # Outsiders: the coordinator may not retry, another institution's admin finds nothing.
    coordinator = Client(HTTP_HOST=HOST)
    staff_force_login(coordinator, "coordinator@neuro.example.com")
    assert coordinator.post(f"/settings/emails/{message.pk}/retry").status_code == 403
    stranger = Client(HTTP_HOST="cancer.localhost")
    staff_force_login(stranger, "admin@cancer.example.com")
    stranger.post(f"/settings/emails/{message.pk}/retry")
    with schema_context("neuro"):
        assert PacsSend.objects.get(pk=send_id).status == PacsSend.Status.FAILED
    # The hospital's PACS now takes compressed images (here: a storescp that does) and the
    # admin sends it again from the list.
    with storescp_running(accept_all=True) as scp:
        with schema_context("neuro"):
            PacsDestination.objects.filter(pk=destination.pk).update(port=scp.port)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/settings/emails/{message.pk}/retry")
        assert queued == [message.pk]
        with schema_context("neuro"):
            assert PacsSend.objects.get(pk=send_id).status == PacsSend.Status.QUEUED
            assert message_deliver(message_id=message.pk)
            send = PacsSend.objects.get(pk=send_id)
        assert send.status == PacsSend.Status.SENT and send.instances_sent == len(scp.received()) > 0
    assert "Everything was delivered." in client.get("/settings/emails/").content.decode()
    assert "Sent: " in client.get(f"/workspace/cases/{case.public_id}/").content.decode()


def test_a_send_given_up_after_its_attempts_fails_its_outbox_message(case: Case) -> None:
    client = _admin_client()
    destination = _add_dimse(client, free_port())  # nothing listens there
    _send(client, case, destination)
    with schema_context("neuro"):
        message = OutboxMessage.objects.get(kind=OUTBOX_KIND)
        for _ in range(MAX_ATTEMPTS):
            OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
            assert not message_deliver(message_id=message.pk)
        message.refresh_from_db()
    assert (
        message.status == OutboxMessage.Status.FAILED and message.last_error == f"PACS: {dimse.NOT_REACHED}"
    )


def test_it_refuses_bad_destinations_in_words(neuro: Institution) -> None:
    client = _admin_client()
    cases = [
        ({"name": "", "kind": "dimse"}, destination_messages.NAME_REQUIRED),
        (
            {"name": "P", "kind": "dimse", "called_ae": "WAY-TOO-LONG-AE-TITLE", "host": "h", "port": "104"},
            destination_messages.AE_INVALID,
        ),
        (
            {"name": "P", "kind": "dimse", "called_ae": "PACS", "host": "h", "port": "99999"},
            destination_messages.PORT_INVALID,
        ),
        ({"name": "P", "kind": "dicomweb", "stow_url": "ftp://pacs"}, destination_messages.URL_INVALID),
        (
            {"name": "P", "kind": "dicomweb", "stow_url": "https://pacs/dicom-web", "auth": "basic"},
            destination_messages.AUTH_INCOMPLETE,
        ),
    ]
    for data, message in cases:
        response = client.post("/settings/pacs/", data)
        assert response.status_code == 400 and escape(message) in response.content.decode(), data
    with schema_context("neuro"):
        assert not PacsDestination.objects.exists()


def test_it_keeps_the_stow_password_encrypted(neuro: Institution) -> None:
    client = _admin_client()
    response = client.post(
        "/settings/pacs/",
        {
            "name": "Web PACS",
            "kind": "dicomweb",
            "stow_url": "https://pacs.example.org/dicom-web",
            "auth": "basic",
            "username": "sr",
            "secret": "hunter2-very-secret",
        },
    )
    assert response.status_code == 302
    with schema_context("neuro"):
        destination = PacsDestination.objects.get()
        assert "hunter2" not in destination.secret_encrypted
        from imaging.pacs.destinations import destination_endpoint

        assert destination_endpoint(destination).secret == "hunter2-very-secret"
    assert "hunter2" not in client.get("/settings/pacs/").content.decode()


def test_outsiders_cannot_configure_or_send(case: Case, cancer: Institution) -> None:
    client = _admin_client()
    destination = _add_dimse(client, 104, called="PACS")
    # Coordinators and patients do not set destinations; logged-out visitors sign in first.
    for email in ("coordinator@neuro.example.com", "patient@neuro.example.com"):
        other = Client(HTTP_HOST=HOST)
        staff_force_login(other, email)
        assert other.get("/settings/pacs/").status_code == 403
        assert other.post(f"/settings/pacs/{destination.public_id}/remove").status_code == 403
    assert Client(HTTP_HOST=HOST).get("/settings/pacs/").status_code == 302
    # The case's own patient may not send it; nor may a logged-out visitor.
    patient = Client(HTTP_HOST=HOST)
    staff_force_login(patient, "patient@neuro.example.com")
    data = {"destination": str(destination.public_id)}
    assert patient.post(f"/workspace/pacs/{case.public_id}/send", data).status_code == 403
    logged_out = Client(HTTP_HOST=HOST).post(f"/workspace/pacs/{case.public_id}/send", data)
    assert logged_out.status_code == 302 and "/accounts/login" in logged_out["Location"]
    # Another institution's admin does not find the case (nor the destination) at all.
    stranger = Client(HTTP_HOST="cancer.localhost")
    staff_force_login(stranger, "admin@cancer.example.com")
    assert stranger.post(f"/workspace/pacs/{case.public_id}/send", data).status_code == 404
    assert stranger.post(f"/settings/pacs/{destination.public_id}/echo").status_code == 404
    with schema_context("neuro"):
        assert not PacsSend.objects.exists()
        refused = AuditEvent.objects.filter(case=case, action="pacs.send_request", allowed=False)
        assert refused.exists()


def test_received_files_are_part10(tmp_path: Path) -> None:
    """dataset_bytes (the helper above) finds the dataset after the meta group."""
    ds = ct_stack(1)[0]
    from tests.dicomweb_cases import _encoded

    data = _encoded(ds)
    assert dataset_bytes(data).startswith(b"\x08\x00")
