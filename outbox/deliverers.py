"""Who carries out each kind of message. Apps register their kinds when they load (their
AppConfig.ready), so the outbox, the bottom layer, never imports the apps above it.

A deliverer takes the message's payload and either returns (delivered), raises
:class:`DeliveryRefused` (failed for good: listed for staff at once, not tried again until they
ask; :class:`Undeliverable` when its text may be shown to them) or raises anything else (try
again later; :class:`TryAgain` to show staff why). It must be safe to call again for a payload
it already delivered when the process died before the outbox recorded it (at-least-once), and
must not run inside a transaction of its own that spans its external call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Deliverer = Callable[[dict[str, Any]], None]
# Called, in the retry's transaction, when staff ask to try a failed message again: lets the kind
# re-arm its own state (a PACS send that ended FAILED waits to be sent again).
RetryPreparer = Callable[[dict[str, Any]], None]

_deliverers: dict[str, Deliverer] = {}
_retry_preparers: dict[str, RetryPreparer] = {}


class TryAgain(Exception):
    """Raised by a deliverer for a failure that may pass (the other side is down or busy): tried
    again later like any exception, but its text is shown to staff while it keeps failing, so
    it must hold no patient data."""


class DeliveryRefused(Exception):
    """Raised by a deliverer whose message can never be delivered as it is (the far side
    refused it for good, e.g. Stripe declining a refund): the message is left failed at once,
    for staff to see, instead of being retried for hours. Its text is not kept (it may hold
    patient data); staff read the reason where the deliverer recorded it."""


class Undeliverable(DeliveryRefused):
    """Raised by a deliverer when trying again cannot help until someone changes something (the
    PACS refuses this kind of image, the FHIR server rejects our credentials). Unlike its
    parent's, its text is shown to staff in the list of failures: it must hold no patient data."""


class UnknownKind(LookupError):
    """No deliverer is registered for a message's kind (a deploy that dropped one)."""


def register(kind: str, deliverer: Deliverer, *, on_retry: RetryPreparer | None = None) -> None:
    _deliverers[kind] = deliverer
    if on_retry is not None:
        _retry_preparers[kind] = on_retry


def retry_prepare(kind: str, payload: dict[str, Any]) -> None:
    """Let the kind re-arm what a staff retry of one of its messages needs (nothing if unset)."""
    preparer = _retry_preparers.get(kind)
    if preparer is not None:
        preparer(payload)


def deliverer_for(kind: str) -> Deliverer:
    try:
        return _deliverers[kind]
    except KeyError:
        raise UnknownKind(kind) from None
