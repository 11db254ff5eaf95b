"""A task queued from one institution runs in that institution's schema, on a real worker
over the real broker."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest
from django_tenants.utils import schema_context

from accounts.models import User, WorkerHeartbeat
from accounts.tasks import worker_heartbeat
from tenants.models import Institution
from tenants.schema import activate_institution, activate_public

pytestmark = pytest.mark.worker


def _heartbeats(schema: str, token: str) -> list[WorkerHeartbeat]:
    with schema_context(schema):
        return list(WorkerHeartbeat.objects.filter(token=token))


@pytest.mark.django_db(transaction=False)
def test_it_runs_a_task_in_the_schema_it_was_queued_from(
    celery_worker_process: subprocess.Popen[Any],
) -> None:
    neuro = Institution.objects.get(slug="neuro")
    token = uuid.uuid4().hex
    activate_institution(neuro)
    result = worker_heartbeat.delay(token).get(timeout=30)
    activate_public()

    with schema_context("neuro"):
        neuro_accounts = User.objects.count()
    assert result == {"schema": "neuro", "accounts": neuro_accounts}
    # The row was written in neuro's schema, and nowhere else.
    assert [h.schema_name for h in _heartbeats("neuro", token)] == ["neuro"]
    assert _heartbeats("cancer", token) == []
    assert _heartbeats("public", token) == []


@pytest.mark.django_db(transaction=False)
def test_it_keeps_tasks_of_two_institutions_apart(celery_worker_process: subprocess.Popen[Any]) -> None:
    tokens = {}
    for slug in ("cancer", "neuro", "cancer"):
        activate_institution(Institution.objects.get(slug=slug))
        token = uuid.uuid4().hex
        tokens[token] = slug
        worker_heartbeat.delay(token).get(timeout=30)
    activate_public()
    for token, slug in tokens.items():
        other = "neuro" if slug == "cancer" else "cancer"
        assert len(_heartbeats(slug, token)) == 1
        assert _heartbeats(other, token) == []
        assert _heartbeats("public", token) == []
