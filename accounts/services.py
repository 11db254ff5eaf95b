from __future__ import annotations

from accounts.models import User, WorkerHeartbeat
from tenants.schema import current_schema_name


def worker_heartbeat_record(*, token: str) -> WorkerHeartbeat:
    """Write a heartbeat row in the current schema, with what the worker saw there.

    Idempotent by token: running the task twice leaves one row. Used by the tests that prove a
    task queued from one institution runs in that institution's schema only.
    """
    heartbeat, _ = WorkerHeartbeat.objects.get_or_create(
        token=token,
        defaults={"schema_name": current_schema_name(), "account_count": User.objects.count()},
    )
    return heartbeat
