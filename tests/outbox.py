"""The outbox in tests: production's email path (each email written to the outbox with its
change) and what the worker then does, for tests of any app.

- ``outbox_email`` (fixture): ``EMAIL_BACKEND`` is the outbox's; deliveries are not queued to
  a broker (``outbox_deliver_all`` plays the worker), and land in ``mail.outbox``.
- ``outbox_summaries(schema)``: the subjects of the emails written in a schema, oldest first.
"""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings as SettingsWrapper

from outbox import services
from outbox.models import OutboxMessage


@pytest.fixture
def outbox_email(settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setattr(services, "delivery_queue", lambda *, message_id, schema: True)


def outbox_summaries(schema: str) -> list[str]:
    with schema_context(schema):
        return list(OutboxMessage.objects.order_by("pk").values_list("summary", flat=True))


def outbox_deliver_all(schema: str) -> int:
    """Deliver every pending message of ``schema`` now, as the worker would; returns how many."""
    with schema_context(schema):
        ids = OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).values_list("pk", flat=True)
        return sum(services.message_deliver(message_id=pk) for pk in list(ids))
