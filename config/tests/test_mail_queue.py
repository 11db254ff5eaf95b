"""Emails leave through the outbox and a task: a request that sends one never waits for the
mail server."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from outbox import services as outbox_services
from outbox.mail import email_deliver, message_from_json, message_to_json
from outbox.models import OutboxMessage
from tests.test_celery_tenancy import committed


@pytest.fixture
def queued(settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """The production backend; the payloads of the messages whose delivery was queued are
    recorded here instead of reaching a broker this process does not consume (the worker tests
    deliver them for real)."""
    settings.EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    published: list[dict[str, object]] = []

    def record(*, message_id: int, schema: str) -> bool:
        published.append(OutboxMessage.objects.get(pk=message_id).payload)
        return True

    monkeypatch.setattr(outbox_services, "delivery_queue", record)
    return published


@pytest.fixture
def stalled_smtp() -> Iterator[int]:
    """An SMTP server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_it_round_trips_a_message_through_json() -> None:
    message = EmailMultiAlternatives(
        "Subject", "Body", "SecondRead <a@b.example>", ["to@example.com"], reply_to=["help@example.com"]
    )
    message.attach_alternative("<p>Body</p>", "text/html")
    message.attach("report.pdf", b"%PDF-1.4 bytes", "application/pdf")
    copy = message_from_json(message_to_json(message))
    assert (copy.subject, copy.body, copy.from_email, copy.to) == (
        "Subject",
        "Body",
        "SecondRead <a@b.example>",
        ["to@example.com"],
    )
    assert copy.alternatives == [("<p>Body</p>", "text/html")]
    assert copy.attachments[0][:2] == ("report.pdf", b"%PDF-1.4 bytes")
    assert copy.reply_to == ["help@example.com"]


def test_it_queues_instead_of_sending(
    queued: list[dict[str, object]], db: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        mail.send_mail("Hello", "Body", None, ["patient@example.com"])
    assert mail.outbox == []  # nothing sent in the caller
    assert [payload["to"] for payload in queued] == [["patient@example.com"]]
    email_deliver(queued[0])  # what the worker runs
    assert [message.subject for message in mail.outbox] == ["Hello"]


def test_it_queues_only_once_the_transaction_commits(queued: list[dict[str, object]], db: None) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        mail.send_mail("Rolled back", "Body", None, ["patient@example.com"])
        raise RuntimeError
    assert queued == []


def test_allauths_emails_are_queued_too(
    queued: list[dict[str, object]],
    platform_client: Client,
    settings: SettingsWrapper,
    stalled_smtp: int,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Password reset on the platform: allauth sends from the request. With a stalled SMTP
    # server the request still returns at once, because it only queued the email.
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", stalled_smtp, 1
    with django_capture_on_commit_callbacks(execute=True):
        response = platform_client.post(
            "/accounts/password/reset/", {"email": "operator@secondread.example.com"}
        )
    assert response.status_code == 302
    assert [payload["to"] for payload in queued] == [["operator@secondread.example.com"]]
    # The worker's delivery gives up after EMAIL_TIMEOUT (and the outbox retries it later).
    with pytest.raises(OSError):
        email_deliver(queued[0])


@pytest.mark.worker
def test_a_real_worker_delivers_a_queued_email(
    celery_worker_process: object, test_mail_dir: Path, settings: SettingsWrapper
) -> None:
    settings.EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
    subject = f"Queued {uuid.uuid4().hex}"
    # Sent on a connection of its own, committed at once (the worker must see the message).
    committed(lambda: mail.send_mail(subject, "Body", None, ["patient@example.com"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(subject in path.read_text() for path in test_mail_dir.glob("*")):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the worker did not deliver the email")
    status = committed(lambda: OutboxMessage.objects.get(summary=subject).status)
    committed(lambda: OutboxMessage.objects.filter(summary=subject).delete())
    assert status == OutboxMessage.Status.DELIVERED
