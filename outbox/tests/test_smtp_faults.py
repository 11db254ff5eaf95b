"""A mail server that refuses or stalls never slows a request, and the email is retried until
it is taken, then sent exactly once. Real SMTP servers on loopback: aiosmtpd (refusing with a
temporary error, then accepting) and a socket that accepts connections and never answers."""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings as SettingsWrapper

from outbox.models import OutboxMessage
from outbox.services import message_deliver
from tests.live import free_port

pytestmark = pytest.mark.django_db

OPERATOR = "operator@secondread.example.com"


class Refusing:
    """Refuses the first ``refusals`` messages with 451 (try again later), then accepts."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.accepted: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            self.refusals -= 1
            return "451 4.3.0 Mailbox busy, try again later"
        self.accepted.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Refusing, int]]:
    handler = Refusing(refusals=2)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def stalled_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def real_smtp(settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch) -> SettingsWrapper:
    from outbox import services

    settings.EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_TIMEOUT = "127.0.0.1", 1
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    monkeypatch.setattr(services, "delivery_queue", lambda *, message_id, schema: True)  # the worker: below
    return settings


def _request_a_password_reset(platform_client: Client) -> float:
    """A request that sends an email (allauth's, on the platform); returns its seconds (the
    page is loaded first, as a person would, so the process's first-request warm-up is not
    counted)."""
    assert platform_client.get("/accounts/password/reset/").status_code == 200
    started = time.monotonic()
    response = platform_client.post("/accounts/password/reset/", {"email": OPERATOR})
    assert response.status_code == 302
    return time.monotonic() - started


def _the_email() -> OutboxMessage:
    with schema_context("public"):
        return OutboxMessage.objects.get()


def _due_now(message: OutboxMessage) -> None:
    with schema_context("public"):
        OutboxMessage.objects.filter(pk=message.pk).update(
            next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
        )


def _deliver(message: OutboxMessage) -> bool:
    with schema_context("public"):
        return message_deliver(message_id=message.pk)


def test_a_refusing_mail_server_gets_the_email_once_it_accepts(
    real_smtp: SettingsWrapper, smtp: tuple[Refusing, int], platform_client: Client
) -> None:
    handler, port = smtp
    real_smtp.EMAIL_PORT = port
    assert _request_a_password_reset(platform_client) < 1.0
    message = _the_email()
    for _ in range(2):  # refused twice: kept, with the SMTP code (never the addresses)
        assert not _deliver(message)
        message.refresh_from_db()
        assert message.status == OutboxMessage.Status.PENDING
        assert message.last_error == "SMTPDataError (451)"
        _due_now(message)
    assert _deliver(message)
    assert not _deliver(message)  # a second delivery of the task sends nothing
    assert len(handler.accepted) == 1 and OPERATOR.encode() in handler.accepted[0]


def test_a_stalled_mail_server_slows_no_request_and_the_email_goes_later(
    real_smtp: SettingsWrapper, stalled_port: int, smtp: tuple[Refusing, int], platform_client: Client
) -> None:
    handler, port = smtp
    handler.refusals = 0
    real_smtp.EMAIL_PORT = stalled_port
    assert _request_a_password_reset(platform_client) < 1.0
    message = _the_email()
    started = time.monotonic()
    assert not _deliver(message)  # the worker gives up after EMAIL_TIMEOUT, not hours later
    assert time.monotonic() - started < 10
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING and message.attempts == 1
    # The mail server is back.
    real_smtp.EMAIL_PORT = port
    _due_now(message)
    assert _deliver(message)
    assert not _deliver(message)
    assert len(handler.accepted) == 1
