"""Who carries out each kind of message. Apps register their kinds when they load (their
AppConfig.ready), so the outbox, the bottom layer, never imports the apps above it.

A deliverer takes the message's payload and either returns (delivered) or raises (try again
later; ``DeliveryRefused``: never again). It must be safe to call again for a payload it already
delivered when the process died before the outbox recorded it (at-least-once), and must not run
inside a transaction of its own that spans its external call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Deliverer = Callable[[dict[str, Any]], None]

_deliverers: dict[str, Deliverer] = {}


class DeliveryRefused(Exception):
    """Raised by a deliverer whose message can never be delivered as it is (the far side
    refused it for good, e.g. Stripe declining a refund): the message is left failed at once,
    for staff to see, instead of being retried for hours. Its text is not kept (it may hold
    patient data); staff read the reason where the deliverer recorded it."""


class UnknownKind(LookupError):
    """No deliverer is registered for a message's kind (a deploy that dropped one)."""


def register(kind: str, deliverer: Deliverer) -> None:
    _deliverers[kind] = deliverer


def deliverer_for(kind: str) -> Deliverer:
    try:
        return _deliverers[kind]
    except KeyError:
        raise UnknownKind(kind) from None
