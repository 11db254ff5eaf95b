"""Finding due messages in every schema at once.

Beat runs ``outbox.sweep`` every 30 seconds. It asks PostgreSQL which schemas have an outbox
table (so a draft institution, which has no schema yet, is never visited) and reads the due
messages of up to ``SCHEMAS_PER_QUERY`` schemas in one query, then queues a delivery for each
in its schema. A message the broker never got (it was down at commit), one whose retry is due,
and one whose worker died (its lease ran out) are all found here.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import connection
from django.utils import timezone

from outbox.services import delivery_queue

logger = logging.getLogger(__name__)

SCHEMAS_PER_QUERY = 200
MESSAGES_PER_SCHEMA = 200
# A message queued at commit is left this long to its own task before the sweep queues it too
# (a busy queue is not a lost message); the claim makes a second task harmless anyway.
GRACE_SECONDS = settings.OUTBOX_SWEEP_GRACE_SECONDS


def schemas_with_outbox() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'outbox_outboxmessage' AND c.relkind IN ('r', 'p') ORDER BY n.nspname"
        )
        return [row[0] for row in cursor.fetchall()]


def messages_due_in(schemas: list[str]) -> list[tuple[str, int]]:
    """(schema, message id) of the due messages of ``schemas``, in one query."""
    if not schemas:
        return []
    now = timezone.now()  # the clock the services write with (not the transaction's start)
    parts = []
    params: list[str | int | datetime.datetime] = []
    for schema in schemas:
        table = f"{connection.ops.quote_name(schema)}.outbox_outboxmessage"
        parts.append(
            f"(SELECT %s, id FROM {table} WHERE status = 'pending' "  # noqa: S608 (quoted identifiers)
            "AND next_attempt_at <= %s AND (leased_until IS NULL OR leased_until < %s) "
            "ORDER BY next_attempt_at LIMIT %s)"
        )
        params += [schema, now - datetime.timedelta(seconds=GRACE_SECONDS), now, MESSAGES_PER_SCHEMA]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(row[0], row[1]) for row in cursor.fetchall()]


def outbox_sweep_all() -> int:
    """Queue every due message's delivery; returns how many were queued."""
    schemas = schemas_with_outbox()
    queued = 0
    for start in range(0, len(schemas), SCHEMAS_PER_QUERY):
        for schema, message_id in messages_due_in(schemas[start : start + SCHEMAS_PER_QUERY]):
            queued += delivery_queue(message_id=message_id, schema=schema)
    # This backend read a table in every schema: start the next sweep on a fresh one (PostgreSQL
    # keeps each touched table's catalogue entries until disconnect).
    if not connection.in_atomic_block:
        connection.close()
    if queued:
        logger.info("outbox sweep queued deliveries", extra={"event": "outbox.swept", "count": queued})
    return queued
