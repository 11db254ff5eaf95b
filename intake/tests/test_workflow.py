"""The case state machine: allowed moves only, and of two people acting on one case at once,
one wins, the other is told, and the patient gets one email."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.models import User
from intake.models import Case
from intake.workflow import (
    TRANSITIONS,
    CaseTransitionRefused,
    case_status_change,
    transition_allowed,
)
from outbox.models import OutboxMessage
from review.models import CaseNote
from review.services import ReviewError, case_decline, case_info_request
from tenants.models import Institution
from tests.cases import case_make
from tests.test_celery_tenancy import committed

pytestmark = pytest.mark.django_db


def test_every_status_has_a_row_and_finished_cases_go_nowhere() -> None:
    assert set(TRANSITIONS) == set(Case.Status.values)
    assert not TRANSITIONS[Case.Status.DECLINED] and not TRANSITIONS[Case.Status.CLOSED]
    assert transition_allowed(current=Case.Status.SUBMITTED, target=Case.Status.ASSIGNED)
    assert not transition_allowed(current=Case.Status.RELEASED, target=Case.Status.SUBMITTED)


def test_it_refuses_a_move_the_table_does_not_allow(in_neuro: Institution, outbox_email: None) -> None:
    case = case_make(status=Case.Status.DECLINED)
    with pytest.raises(CaseTransitionRefused, match="cannot become"):
        case_status_change(case=case, status=Case.Status.SUBMITTED)
    case.refresh_from_db()
    assert case.status == Case.Status.DECLINED
    assert not OutboxMessage.objects.exists()


def test_a_stale_read_is_refused_not_overwritten(in_neuro: Institution, outbox_email: None) -> None:
    case = case_make(status=Case.Status.SUBMITTED)
    stale = Case.objects.get(pk=case.pk)
    case_status_change(case=case, status=Case.Status.DECLINED, note="Out of scope")
    with pytest.raises(CaseTransitionRefused, match="changed this case meanwhile"):
        case_status_change(case=stale, status=Case.Status.INFO_REQUESTED, note="More please")
    # The same move made twice is no error and no second email.
    case_status_change(case=Case.objects.get(pk=case.pk), status=Case.Status.DECLINED)
    assert Case.objects.get(pk=case.pk).status == Case.Status.DECLINED
    assert OutboxMessage.objects.count() == 1


def _race(*steps: Callable[[], Any]) -> list[BaseException | None]:
    """Run ``steps`` at the same moment, each on its own connection (committing)."""
    barrier = threading.Barrier(len(steps))
    outcomes: list[BaseException | None] = [None] * len(steps)

    def run(index: int, step: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            step()
        except BaseException as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, step)) for i, step in enumerate(steps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_decline_and_information_request_one_wins_one_email(
    neuro: Institution, outbox_email: None
) -> None:
    schema = neuro.schema_name

    def setup() -> tuple[Case, User]:
        with schema_context(schema):
            number = f"NNI-R{uuid.uuid4().hex[:8]}"
            return case_make(status=Case.Status.SUBMITTED, with_files=False, number=number), User.objects.get(
                email="coordinator@neuro.example.com"
            )

    case, coordinator = committed(setup)

    def decline() -> None:
        with schema_context(schema):
            case_decline(case=Case.objects.get(pk=case.pk), by=coordinator, reason="Outside our specialty")

    def ask() -> None:
        with schema_context(schema):
            case_info_request(case=Case.objects.get(pk=case.pk), by=coordinator, note="Send the 2023 MRI")

    try:
        outcomes = _race(decline, ask)

        def outcome() -> tuple[str, list[str], int]:
            with schema_context(schema):
                return (
                    Case.objects.get(pk=case.pk).status,
                    list(
                        OutboxMessage.objects.filter(summary__contains=str(case.number)).values_list(
                            "summary", flat=True
                        )
                    ),
                    CaseNote.objects.filter(case_id=case.pk).count(),
                )

        status, emails, notes = committed(outcome)
    finally:

        def cleanup() -> None:
            with schema_context(schema):
                OutboxMessage.objects.filter(summary__contains=str(case.number)).delete()
                CaseNote.objects.filter(case_id=case.pk).delete()
                Case.objects.filter(pk=case.pk).delete()

        committed(cleanup)
    refused = [error for error in outcomes if error is not None]
    assert len(refused) == 1 and isinstance(refused[0], ReviewError)
    assert "changed this case meanwhile" in str(refused[0])
    assert status in (Case.Status.DECLINED, Case.Status.INFO_REQUESTED)
    assert len(emails) == 1 and notes == 1  # the loser's note rolled back with its move
