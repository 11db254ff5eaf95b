"""A go-live that never finished (its worker died mid-way, or its task was lost) is resumed, or
after a few attempts rolled back; schemas nobody owns are dropped, also with an abandoned draft.

The dead run is reproduced as it leaves things: the onboarding PROVISIONING, its schema cloned
and its administrator created, and nothing touched since. tests/faults has the same with a
real worker killed mid-way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from accounts.models import User
from institutions import provisioning
from institutions.onboarding import onboarding_discard_abandoned, onboarding_go_live_request
from institutions.recovery import GO_LIVE_ATTEMPTS, GO_LIVE_STALE_AFTER, onboardings_recover
from institutions.tasks import institution_go_live
from institutions.tests.test_go_live import EMAIL, queued
from tenants.models import Domain, Institution, Onboarding
from tests.queued import task_calls

# Slow: it makes, clones and drops whole schemas.
pytestmark = pytest.mark.slow

__all__ = ["queued"]  # fixture


def _died_mid_way(onboarding: Onboarding, *, attempts: int = 1, minutes_ago: float = 11) -> str:
    """Leave ``onboarding`` as a go-live run killed after cloning the schema leaves it."""
    institution = Institution.objects.get(pk=onboarding.institution_id)
    provisioning.schema_clone(schema_name=institution.schema_name)
    with schema_context(institution.schema_name), connection.cursor() as cursor:
        provisioning._administrator_create(onboarding=onboarding)
        # Committed, as the dead run's were (here the test's one transaction holds them).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Onboarding.objects.filter(pk=onboarding.pk).update(
        state=Onboarding.State.PROVISIONING,
        progress=60,
        go_live_attempts=attempts,
        updated=timezone.now() - timedelta(minutes=minutes_ago),
    )
    return institution.schema_name


def test_it_resumes_a_go_live_whose_worker_died_and_it_goes_live_once(
    queued: Onboarding, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    schema = _died_mid_way(queued)
    calls = task_calls(monkeypatch, institution_go_live)
    with django_capture_on_commit_callbacks(execute=True):
        recovered = onboardings_recover()
    assert recovered.resumed == [queued.pk] and calls == [(queued.pk,)]
    assert onboardings_recover().resumed == []  # queued once, not at every sweep

    assert provisioning.institution_go_live(onboarding_id=queued.pk)  # what the worker does
    queued.refresh_from_db()
    assert (queued.state, queued.progress) == (Onboarding.State.LIVE, 100)
    institution = Institution.objects.get(pk=queued.institution_id)
    assert institution.status == Institution.Status.ACTIVE and institution.schema_name == schema
    assert Domain.objects.filter(tenant=institution).count() == 1
    with schema_context(schema):
        assert User.objects.filter(email=EMAIL).count() == 1  # the dead run's is gone with its schema
    assert Client(HTTP_HOST="northgate.localhost").get("/").status_code == 200


def test_it_leaves_a_go_live_in_progress_alone(queued: Onboarding, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = _died_mid_way(queued, minutes_ago=1)  # its worker is still at it
    calls = task_calls(monkeypatch, institution_go_live)
    recovered = onboardings_recover()
    assert (recovered.resumed, recovered.rolled_back, recovered.schemas_dropped) == ([], [], [])
    assert calls == [] and schema_exists(schema)


def test_it_queues_again_a_go_live_whose_task_was_lost(
    queued: Onboarding, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    Onboarding.objects.filter(pk=queued.pk).update(updated=timezone.now() - GO_LIVE_STALE_AFTER * 2)
    calls = task_calls(monkeypatch, institution_go_live)
    with django_capture_on_commit_callbacks(execute=True):
        assert onboardings_recover().resumed == [queued.pk]
    assert calls == [(queued.pk,)]


def test_it_rolls_back_a_go_live_that_keeps_dying_and_the_applicant_may_retry(
    queued: Onboarding, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    schema = _died_mid_way(queued, attempts=GO_LIVE_ATTEMPTS)
    calls = task_calls(monkeypatch, institution_go_live)
    assert onboardings_recover().rolled_back == [queued.pk]
    assert calls == [] and not schema_exists(schema)
    queued.refresh_from_db()
    assert queued.state == Onboarding.State.FAILED and "try again" in queued.progress_message
    institution = Institution.objects.get(pk=queued.institution_id)
    assert institution.status == Institution.Status.DRAFT
    assert not Domain.objects.filter(tenant=institution).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert onboarding_go_live_request(onboarding_id=queued.pk).state == Onboarding.State.QUEUED
    assert calls == [(queued.pk,)]


def test_the_applicant_may_retry_a_stale_go_live_at_once(
    queued: Onboarding, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    _died_mid_way(queued)
    calls = task_calls(monkeypatch, institution_go_live)
    with django_capture_on_commit_callbacks(execute=True):
        assert onboarding_go_live_request(onboarding_id=queued.pk).state == Onboarding.State.QUEUED
    assert calls == [(queued.pk,)]


def test_it_drops_orphan_schemas_but_never_a_live_institutions(
    queued: Onboarding, neuro: Institution, django_capture_on_commit_callbacks: Any
) -> None:
    schema = _died_mid_way(queued)
    # Rolled back by hand (as an older version did: FAILED, but its schema left behind).
    Onboarding.objects.filter(pk=queued.pk).update(state=Onboarding.State.FAILED)
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "inst_0123456789ab"')  # its institution row is gone
    dropped = onboardings_recover().schemas_dropped
    assert sorted(dropped) == sorted([schema, "inst_0123456789ab"])
    assert schema_exists(neuro.schema_name)

    # The 30-day clean-up takes the schema with the draft too.
    _died_mid_way(queued)
    Onboarding.objects.filter(pk=queued.pk).update(
        state=Onboarding.State.FAILED, updated=timezone.now() - timedelta(days=31)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert onboarding_discard_abandoned() == 1
    assert not schema_exists(schema)
