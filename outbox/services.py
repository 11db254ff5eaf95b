"""Writing messages with the change that causes them, and delivering them afterwards.

``enqueue`` runs inside the caller's transaction: the message exists if and only if the change
committed. Once it commits, a delivery task is queued; should the broker be unreachable then,
the request still succeeds and the periodic sweep (``outbox.sweep``) queues it later.

``message_deliver`` claims a message with a conditional UPDATE (its lease), calls the kind's
deliverer outside any transaction, and records the outcome: delivered only after the deliverer
returned; otherwise tried again after an exponentially growing pause, and after
``MAX_ATTEMPTS`` left as failed for staff to see (and retry). A deliverer that raises
``Undeliverable`` (retrying cannot help) leaves it failed at once.
"""

from __future__ import annotations

import datetime
import logging
import smtplib
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from outbox.deliverers import DeliveryRefused, TryAgain, Undeliverable, deliverer_for, retry_prepare
from outbox.models import OutboxMessage

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
FIRST_RETRY_SECONDS = 30
LONGEST_RETRY_SECONDS = 3600
# Shown to staff after this many failed attempts (still being retried).
FAILING_AFTER_ATTEMPTS = 3


def lease_seconds() -> int:
    """How long a claimed message is left to its worker before the sweep may try it again:
    longer than a delivery can take (each SMTP step waits up to EMAIL_TIMEOUT)."""
    return max(300, settings.EMAIL_TIMEOUT * 10)


def enqueue(*, kind: str, key: str, payload: dict[str, Any], summary: str = "") -> OutboxMessage | None:
    """Write a message with the caller's change; deliver it once that commits.

    Returns the new message, or None when ``key`` was enqueued before (nothing new happens:
    a repeated step, a retried task, a webhook delivered twice). ``summary`` is what staff see
    if it keeps failing: no patient data."""
    try:
        with transaction.atomic():  # a savepoint: a duplicate key leaves the caller's transaction usable
            message = OutboxMessage.objects.create(
                kind=kind, dedupe_key=key[:200], payload=payload, summary=summary[:200]
            )
    except IntegrityError:
        if OutboxMessage.objects.filter(dedupe_key=key[:200]).exists():
            return None
        raise
    message_id, schema = message.pk, _schema()
    transaction.on_commit(lambda: delivery_queue(message_id=message_id, schema=schema))
    return message


def _schema() -> str:
    return str(connection.schema_name)  # type: ignore[attr-defined]  # django-tenants' connection


def delivery_queue(*, message_id: int, schema: str) -> bool:
    """Queue the delivery task; never raises (this runs after a commit a user is waiting on).
    Returns whether the broker took it; if not, the sweep finds the message later."""
    from outbox.tasks import outbox_deliver

    try:
        outbox_deliver.apply_async(
            (message_id,),
            headers={"_schema_name": schema},
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        )
    except Exception as exc:  # the broker is down: the sweep delivers it once it is back
        logger.warning(
            "outbox delivery not queued, the sweep will",
            extra={"event": "outbox.queue_failed", "object_id": message_id, "status": type(exc).__name__},
        )
        return False
    return True


def retry_delay(attempts: int) -> datetime.timedelta:
    """30 s, 1 min, 2 min, … up to an hour between attempts."""
    seconds = FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0)
    return datetime.timedelta(seconds=min(seconds, LONGEST_RETRY_SECONDS))


def error_summary(exc: BaseException) -> str:
    """The failure's kind without its text: SMTP refusals quote the recipients' addresses.
    An ``Undeliverable``'s or ``TryAgain``'s text is for staff by contract (no patient data)."""
    if isinstance(exc, Undeliverable | TryAgain):
        return str(exc)[:200] or type(exc).__name__
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(value[0]) for value in exc.recipients.values()})
        return f"SMTPRecipientsRefused ({', '.join(codes)})"[:200]
    return f"{type(exc).__name__} ({code})" if code else type(exc).__name__


def message_deliver(*, message_id: int) -> bool:
    """Deliver one message if it is due and nobody else holds it; returns whether it was
    delivered by this call. Precondition: not inside a transaction (the external call must not
    hold one open, and the claim must be visible to other workers at once)."""
    now = timezone.now()
    claimed = (
        _due(now)
        .filter(pk=message_id)
        .update(
            attempts=F("attempts") + 1,
            leased_until=now + datetime.timedelta(seconds=lease_seconds()),
            updated=now,
        )
    )
    if not claimed:
        return False
    message = OutboxMessage.objects.get(pk=message_id)
    try:
        deliverer_for(message.kind)(message.payload)
    except Exception as exc:
        failed = message.attempts >= MAX_ATTEMPTS or isinstance(exc, DeliveryRefused)
        OutboxMessage.objects.filter(pk=message_id).update(
            status=OutboxMessage.Status.FAILED if failed else OutboxMessage.Status.PENDING,
            next_attempt_at=timezone.now() + retry_delay(message.attempts),
            leased_until=None,
            last_error=error_summary(exc),
            updated=timezone.now(),
        )
        logger.warning(
            "outbox delivery failed",
            extra={
                "event": "outbox.failed" if failed else "outbox.retry",
                "object_id": message_id,
                "count": message.attempts,
                "status": type(exc).__name__,
            },
        )
        return False
    OutboxMessage.objects.filter(pk=message_id).update(
        status=OutboxMessage.Status.DELIVERED,
        delivered_at=timezone.now(),
        leased_until=None,
        last_error="",
        updated=timezone.now(),
    )
    logger.info("outbox message delivered", extra={"event": "outbox.delivered", "object_id": message_id})
    return True


def _not_leased(now: datetime.datetime) -> Q:
    return Q(leased_until__isnull=True) | Q(leased_until__lt=now)


def _due(now: datetime.datetime) -> QuerySet[OutboxMessage]:
    return OutboxMessage.objects.filter(
        _not_leased(now), status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now
    )


def messages_due(*, limit: int = 500) -> list[int]:
    """This schema's pending messages whose time has come (new ones the broker never got,
    retries, and leases of workers that died)."""
    return list(_due(timezone.now()).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def messages_failing() -> QuerySet[OutboxMessage]:
    """What staff should know about: given up, or failed several times and still trying."""
    return OutboxMessage.objects.filter(
        Q(status=OutboxMessage.Status.FAILED)
        | Q(status=OutboxMessage.Status.PENDING, attempts__gte=FAILING_AFTER_ATTEMPTS)
    ).order_by("-updated")


def message_retry(*, message_id: int) -> bool:
    """Staff asked to try a failing message again now. Returns whether it was one to retry.
    The message's kind re-arms its own state in the same transaction (``retry_prepare``)."""
    now = timezone.now()
    with transaction.atomic():
        message = messages_failing().filter(_not_leased(now), pk=message_id).select_for_update().first()
        if message is None:
            return False
        OutboxMessage.objects.filter(pk=message_id).update(
            status=OutboxMessage.Status.PENDING, attempts=0, next_attempt_at=now, updated=now
        )
        retry_prepare(message.kind, message.payload)
        schema = _schema()
        transaction.on_commit(lambda: delivery_queue(message_id=message_id, schema=schema))
    return True
