"""The admin sees the emails that keep failing and sends them again; nobody else can."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from audit.models import AuditEvent
from institutions.delivery_views import RETRY_QUEUED, RETRY_REFUSED
from outbox.models import OutboxMessage
from outbox.services import MAX_ATTEMPTS
from tenants.models import Institution
from tests.staff import staff_force_login

pytestmark = pytest.mark.django_db


def _client(email: str, host: str = "neuro.localhost") -> Client:
    client = Client(HTTP_HOST=host)
    staff_force_login(client, email)
    return client


def _failed(institution: Institution, subject: str = "Your payment receipt (NNI-000001)") -> OutboxMessage:
    with tenant_context(institution):
        return OutboxMessage.objects.create(
            kind="email",
            dedupe_key=f"test:{subject}",
            payload={},
            summary=subject,
            status=OutboxMessage.Status.FAILED,
            attempts=MAX_ATTEMPTS,
            last_error="SMTPServerDisconnected",
        )


def test_it_lists_failing_emails_and_sends_one_again(
    neuro: Institution, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outbox import services

    queued: list[int] = []
    monkeypatch.setattr(services, "delivery_queue", lambda *, message_id, schema: queued.append(message_id))
    message = _failed(neuro)
    admin = _client("admin@neuro.example.com")
    home = admin.get("/settings/").content.decode()
    assert "1 message could not be delivered" in home
    page = admin.get("/settings/emails/").content.decode()
    assert "Your payment receipt (NNI-000001)" in page and "SMTPServerDisconnected" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/settings/emails/{message.pk}/retry", follow=True)
    assert RETRY_QUEUED in response.content.decode()
    assert queued == [message.pk]
    with tenant_context(neuro):
        message.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING and message.attempts == 0
    assert "Everything was delivered." in admin.get("/settings/emails/").content.decode()
    with tenant_context(neuro):
        retry = AuditEvent.objects.get(action="delivery.retry")
    assert (retry.actor_email, retry.object_ref, retry.allowed) == (
        "admin@neuro.example.com",
        f"outbox:{message.pk}",
        True,
    )


def test_it_refuses_everyone_but_the_admin(neuro: Institution) -> None:
    message = _failed(neuro)
    for role in ("coordinator", "reviewer1"):
        client = _client(f"{role}@neuro.example.com")
        assert client.get("/settings/emails/").status_code == 403
        assert client.post(f"/settings/emails/{message.pk}/retry").status_code == 403
    anonymous = Client(HTTP_HOST="neuro.localhost")
    response = anonymous.post(f"/settings/emails/{message.pk}/retry")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    with tenant_context(neuro):
        message.refresh_from_db()
    assert message.status == OutboxMessage.Status.FAILED


def test_another_institutions_admin_cannot_retry_ours(neuro: Institution, cancer: Institution) -> None:
    message = _failed(neuro, subject="Only neuro's")
    other = _client("admin@cancer.example.com", host="cancer.localhost")
    assert "Only neuro&#x27;s" not in other.get("/settings/emails/").content.decode()
    response = other.post(f"/settings/emails/{message.pk}/retry", follow=True)
    assert RETRY_REFUSED in response.content.decode()
    with tenant_context(cancer):  # the refused attempt is on the record of the institution it came from
        assert AuditEvent.objects.get(action="delivery.retry").allowed is False
    with tenant_context(neuro):
        message.refresh_from_db()
    assert message.status == OutboxMessage.Status.FAILED
