"""Periodic work that must visit every institution, done in batches by one task.

Beat used to queue one task per institution (1,004 per tick at 1,000 institutions) on the queue
patients' uploads use, so an upload finishing just after a sweep waited 24 s behind them. Now a
sweep task visits ``SWEEP_BATCH`` institutions itself, then queues its own continuation after
the last one it did; sweeps run on the housekeeping queue (config/celery_routes.py) so they never
stand in front of patient-facing work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connection
from django_tenants.utils import schema_context

from tenants.selectors import institution_schemas_live

logger = logging.getLogger(__name__)

SWEEP_BATCH = 100


def institutions_sweep(*, after: str, work: Callable[[], object], batch: int | None = None) -> str | None:
    """Run ``work`` in each of the next ``batch`` institutions' schemas after ``after``.

    One institution failing is logged (schema name only) and does not stop the others. Returns
    the last schema done when there may be more, or None when the sweep is complete.
    Precondition: called in the public schema (beat publishes from there).
    """
    batch = batch or SWEEP_BATCH
    schemas = institution_schemas_live(after=after, limit=batch)
    for schema in schemas:
        try:
            with schema_context(schema):
                work()
        except Exception:
            logger.exception("sweep failed in one institution", extra={"schema": schema})
    # This connection touched a batch of schemas' tables: let the next batch start on a fresh
    # backend (PostgreSQL keeps every touched table's catalogue entries until disconnect);
    # not when a caller's transaction is open (the connection is theirs).
    if not connection.in_atomic_block:
        connection.close()
    return schemas[-1] if len(schemas) == batch else None
