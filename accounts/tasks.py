from __future__ import annotations

from celery import shared_task

from accounts.services import worker_heartbeat_record


@shared_task(name="accounts.worker_heartbeat")
def worker_heartbeat(token: str) -> dict[str, object]:
    """Record that a worker ran a task in the schema it was queued from (see the service)."""
    heartbeat = worker_heartbeat_record(token=token)
    return {"schema": heartbeat.schema_name, "accounts": heartbeat.account_count}
