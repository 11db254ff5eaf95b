"""Delivering outbox messages: one task per message after its commit, and a periodic sweep
for what that missed (the broker was down, a worker died, a retry is due)."""

from __future__ import annotations

from celery import shared_task


# acks_late and reject_on_worker_lost: a worker killed mid-delivery gives the message back to
# the broker; the lease (not the broker) decides whether it is sent again.
@shared_task(
    name="outbox.deliver",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=150,
)
def outbox_deliver(message_id: int) -> None:
    """Deliver one message of this schema (claims it first: a second run does nothing)."""
    from outbox.services import message_deliver

    message_deliver(message_id=message_id)


@shared_task(name="outbox.sweep", ignore_result=True, soft_time_limit=300, time_limit=330)
def outbox_sweep() -> int:
    """Queue the delivery of every due message in every schema (beat, from the public schema)."""
    from outbox.sweep import outbox_sweep_all

    return outbox_sweep_all()
