"""The outbox: written with the change, delivered after commit, retried with back-off,
delivered once, and a broker that is down never fails the caller."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context
from pytest_django.fixtures import Settings as SettingsWrapper

from outbox import deliverers
from outbox.models import OutboxMessage
from outbox.services import (
    MAX_ATTEMPTS,
    delivery_queue,
    enqueue,
    message_deliver,
    message_retry,
    messages_failing,
)
from outbox.sweep import GRACE_SECONDS, outbox_sweep_all
from outbox.tasks import outbox_deliver
from tenants.models import Institution

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Deliveries queued to the broker: (message id, schema)."""
    calls: list[tuple[int, str]] = []

    def record(args: tuple[int], headers: dict[str, str], **options: Any) -> None:
        calls.append((args[0], headers["_schema_name"]))

    monkeypatch.setattr(outbox_deliver, "apply_async", record)
    return calls


@pytest.fixture
def outbox_email(settings: SettingsWrapper) -> None:
    """Production's email path: the outbox, then the real delivery (here into mail.outbox)."""
    settings.EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def flaky() -> Any:
    """A kind whose deliverer fails while ``failures`` is positive."""
    state: dict[str, Any] = {"failures": 0, "delivered": []}

    def deliver(payload: dict[str, Any]) -> None:
        if state["failures"]:
            state["failures"] -= 1
            raise ConnectionRefusedError("mail for Jane Roe <jane@example.com> refused")
        state["delivered"].append(payload)

    deliverers.register("test-flaky", deliver)
    return state


def _due_now(message_id: int) -> None:
    OutboxMessage.objects.filter(pk=message_id).update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=GRACE_SECONDS + 1)
    )


def test_it_writes_nothing_when_the_change_rolls_back(
    outbox_email: None, published: list[tuple[int, str]], neuro: Institution
) -> None:
    with tenant_context(neuro), pytest.raises(RuntimeError), transaction.atomic():
        mail.send_mail("Rolled back", "Body", None, ["patient@example.com"])
        raise RuntimeError
    with tenant_context(neuro):
        assert not OutboxMessage.objects.exists()
    assert published == []


def test_it_delivers_an_email_after_commit_once(
    outbox_email: None,
    published: list[tuple[int, str]],
    neuro: Institution,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with tenant_context(neuro):
        with django_capture_on_commit_callbacks(execute=True):
            mail.send_mail("Hello", "Body", None, ["patient@example.com"])
        assert mail.outbox == []  # nothing sent by the caller
        (message,) = OutboxMessage.objects.all()
        assert published == [(message.pk, neuro.schema_name)]
        assert message_deliver(message_id=message.pk)  # what the worker runs
        assert not message_deliver(message_id=message.pk)  # a second delivery of the task
        message.refresh_from_db()
    assert [m.subject for m in mail.outbox] == ["Hello"]
    assert message.status == OutboxMessage.Status.DELIVERED and message.delivered_at is not None


def test_the_same_key_is_one_message(
    flaky: Any, published: list[tuple[int, str]], neuro: Institution
) -> None:
    with tenant_context(neuro):
        with transaction.atomic():
            first = enqueue(kind="test-flaky", key="k-1", payload={"n": 1})
            again = enqueue(kind="test-flaky", key="k-1", payload={"n": 2})
            OutboxMessage.objects.count()  # the transaction is still usable
        assert first is not None and again is None
        assert OutboxMessage.objects.filter(dedupe_key="k-1").count() == 1


def test_it_retries_with_back_off_and_keeps_patient_data_out_of_the_error(
    flaky: Any, published: list[tuple[int, str]], neuro: Institution
) -> None:
    flaky["failures"] = 2
    with tenant_context(neuro):
        message = enqueue(kind="test-flaky", key="k-retry", payload={"n": 1})
        assert message is not None
        assert not message_deliver(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == OutboxMessage.Status.PENDING and message.attempts == 1
        assert message.last_error == "ConnectionRefusedError"
        first_pause = message.next_attempt_at - timezone.now()
        assert not message_deliver(message_id=message.pk)  # not due yet: nothing tried
        _due_now(message.pk)
        assert not message_deliver(message_id=message.pk)
        message.refresh_from_db()
        assert message.next_attempt_at - timezone.now() > first_pause  # a longer pause
        _due_now(message.pk)
        assert message_deliver(message_id=message.pk)
        message.refresh_from_db()
    assert message.status == OutboxMessage.Status.DELIVERED and message.attempts == 3
    assert flaky["delivered"] == [{"n": 1}]


def test_it_gives_up_after_the_last_attempt_and_staff_can_retry(
    flaky: Any, published: list[tuple[int, str]], neuro: Institution, django_capture_on_commit_callbacks: Any
) -> None:
    flaky["failures"] = MAX_ATTEMPTS
    with tenant_context(neuro):
        message = enqueue(kind="test-flaky", key="k-give-up", summary="Your receipt", payload={})
        assert message is not None
        for _ in range(MAX_ATTEMPTS):
            _due_now(message.pk)
            message_deliver(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == OutboxMessage.Status.FAILED
        assert list(messages_failing()) == [message]
        _due_now(message.pk)
        assert not message_deliver(message_id=message.pk)  # failed: only staff restart it
        with django_capture_on_commit_callbacks(execute=True):
            assert message_retry(message_id=message.pk)
        assert message_deliver(message_id=message.pk)
        assert list(messages_failing()) == []


def test_an_undeliverable_message_fails_at_once_and_a_retry_rearms_its_kind(
    published: list[tuple[int, str]], neuro: Institution, django_capture_on_commit_callbacks: Any
) -> None:
    state: dict[str, Any] = {"refuse": True, "rearmed": []}

    def deliver(payload: dict[str, Any]) -> None:
        if state["refuse"]:
            raise deliverers.Undeliverable("The server refused our credentials (401)")

    deliverers.register("test-refused", deliver, on_retry=lambda payload: state["rearmed"].append(payload))
    with tenant_context(neuro):
        message = enqueue(kind="test-refused", key="k-refused", summary="Report", payload={"n": 7})
        assert message is not None
        assert not message_deliver(message_id=message.pk)
        message.refresh_from_db()
        assert (message.status, message.attempts) == (OutboxMessage.Status.FAILED, 1)
        assert message.last_error == "The server refused our credentials (401)"
        assert list(messages_failing()) == [message]
        state["refuse"] = False
        with django_capture_on_commit_callbacks(execute=True):
            assert message_retry(message_id=message.pk)
        assert state["rearmed"] == [{"n": 7}]
        assert message_deliver(message_id=message.pk)


def test_a_claimed_message_is_not_delivered_twice(
    flaky: Any, published: list[tuple[int, str]], neuro: Institution
) -> None:
    with tenant_context(neuro):
        message = enqueue(kind="test-flaky", key="k-lease", payload={})
        assert message is not None
        OutboxMessage.objects.filter(pk=message.pk).update(
            leased_until=timezone.now() + datetime.timedelta(minutes=5)
        )  # a worker is delivering it right now
        assert not message_deliver(message_id=message.pk)
        assert not message_retry(message_id=message.pk)
        _due_now(message.pk)
    published.clear()
    assert outbox_sweep_all() == 0
    with tenant_context(neuro):
        # That worker died: once its lease runs out the sweep hands the message on.
        OutboxMessage.objects.filter(pk=message.pk).update(leased_until=timezone.now())
    assert outbox_sweep_all() == 1
    assert published == [(message.pk, neuro.schema_name)]


def test_the_sweep_finds_due_messages_in_every_schema(
    flaky: Any, published: list[tuple[int, str]], neuro: Institution, cancer: Institution
) -> None:
    ids = {}
    for schema in (neuro.schema_name, cancer.schema_name, "public"):
        with schema_context(schema):
            message = enqueue(kind="test-flaky", key=f"k-sweep-{schema}", payload={})
            assert message is not None
            ids[schema] = message.pk
    with schema_context(cancer.schema_name):
        fresh = enqueue(kind="test-flaky", key="k-sweep-fresh", payload={})  # its own task has it
    published.clear()
    for schema, message_id in ids.items():
        with schema_context(schema):
            _due_now(message_id)
    assert outbox_sweep_all() == 3
    assert sorted(published) == sorted((pk, schema) for schema, pk in ids.items())
    assert fresh is not None and (fresh.pk, cancer.schema_name) not in published


def test_a_broker_that_is_down_never_fails_the_caller(settings: SettingsWrapper, neuro: Institution) -> None:
    from config.celery_app import app

    def pools_reset() -> None:  # connections are pooled per broker address
        app._pool = None
        app.amqp._producer_pool = None

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    pools_reset()
    try:
        started = timezone.now()
        assert delivery_queue(message_id=1, schema=neuro.schema_name) is False
        assert timezone.now() - started < datetime.timedelta(seconds=5)
    finally:
        app.conf.broker_url = original
        pools_reset()
