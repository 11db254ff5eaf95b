"""Staff hear of what needs them: in-app and by email, per person (issue 15, item 6)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from intake.models import Case
from intake.workflow import case_status_change
from review.models import FollowUpQuestion, Opinion, StaffNotification
from review.services import case_assign
from review.staff_notifications import cases_due_notify
from tenants.models import Institution
from tests.cases import user_in
from tests.outbox import outbox_summaries
from tests.staff import staff_force_login


def _notices(neuro: Institution, email: str, case: Case) -> list[str]:
    with schema_context(neuro.schema_name):
        return list(
            StaffNotification.objects.filter(user__email=email, case=case).values_list("kind", flat=True)
        )


def test_it_tells_coordinators_of_a_new_case_and_the_reviewer_of_an_assignment(
    neuro: Institution, make_case: Callable[..., Case], outbox_email: None
) -> None:
    case = make_case(status=Case.Status.DRAFT)
    with schema_context(neuro.schema_name):
        case_status_change(case=case, status=Case.Status.SUBMITTED)
        case_status_change(case=Case.objects.get(pk=case.pk), status=Case.Status.SUBMITTED)  # again: no-op
        reviewer = user_in(neuro, "reviewer1@neuro.example.com")
        case_assign(case=case, reviewer=reviewer, by=user_in(neuro, "coordinator@neuro.example.com"))
    assert _notices(neuro, "coordinator@neuro.example.com", case) == ["new_case"]
    assert _notices(neuro, "reviewer1@neuro.example.com", case) == ["assigned"]
    assert _notices(neuro, "reviewer2@neuro.example.com", case) == []
    subjects = outbox_summaries(neuro.schema_name)
    assert sum(f"New case submitted: {case.number}" in s for s in subjects) >= 1
    assert any(f"Case assigned to you: {case.number}" in s for s in subjects)
    assert not any("Testpatient" in s for s in subjects)  # no patient name in emails' subjects


def test_it_keeps_a_released_case_with_an_open_question_in_the_open_queue_and_notifies(
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    outbox_email: None,
) -> None:
    case = make_case(status=Case.Status.RELEASED)
    with schema_context(neuro.schema_name):
        reviewer = user_in(neuro, "reviewer1@neuro.example.com")
        Opinion.objects.create(
            case=case, author=reviewer, signed_at=timezone.now(), released_at=timezone.now()
        )
    coordinator = staff_client("coordinator")
    assert str(case.number) not in coordinator.get("/workspace/").content.decode()
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    from review.services import follow_up_ask

    with schema_context(neuro.schema_name):
        follow_up_ask(case=case, user=case.owner, question="Should I stop my medication?")
    assert str(case.number) in coordinator.get("/workspace/").content.decode()
    assert _notices(neuro, "coordinator@neuro.example.com", case) == ["follow_up"]
    page = coordinator.get("/workspace/notifications/").content.decode()
    assert f"Patient asked a follow-up question: {case.number}" in page
    with schema_context(neuro.schema_name):
        FollowUpQuestion.objects.filter(case=case).update(answer="No.", answered_at=timezone.now())
    assert str(case.number) not in coordinator.get("/workspace/").content.decode()


def test_it_notifies_due_and_overdue_cases_once_a_day(
    neuro: Institution, make_case: Callable[..., Case], outbox_email: None
) -> None:
    overdue = make_case(submitted_days_ago=30)
    with schema_context(neuro.schema_name):
        Case.objects.filter(pk=overdue.pk).update(due_at=timezone.now() - dt.timedelta(days=1))
        first = cases_due_notify()
        again = cases_due_notify()
    assert first >= 1 and again == 0
    assert "overdue" in _notices(neuro, "coordinator@neuro.example.com", overdue)


def test_it_emails_only_the_notices_a_person_keeps_on(
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    outbox_email: None,
) -> None:
    client = staff_client("coordinator")
    client.post("/workspace/notifications/email", {"email": ["assigned", "follow_up"]})
    before = len(outbox_summaries(neuro.schema_name))
    case = make_case(status=Case.Status.DRAFT)
    with schema_context(neuro.schema_name):
        case_status_change(case=case, status=Case.Status.SUBMITTED)
    subjects = outbox_summaries(neuro.schema_name)[before:]
    # The admin still gets it by email; the coordinator only in the list.
    assert _notices(neuro, "coordinator@neuro.example.com", case) == ["new_case"]
    assert len([s for s in subjects if s.startswith("New case submitted") and str(case.number) in s]) == 1


def test_it_shows_notifications_only_to_signed_in_staff(neuro_client: Client, cancer_client: Client) -> None:
    assert neuro_client.get("/workspace/notifications/").status_code == 302
    assert neuro_client.post("/workspace/notifications/email", {}).status_code == 302
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    assert patient.get("/workspace/notifications/").status_code == 403
    assert patient.post("/workspace/notifications/email", {}).status_code == 403
    staff_force_login(cancer_client, "coordinator@cancer.example.com")
    neuro_client.cookies = cancer_client.cookies
    assert neuro_client.get("/workspace/notifications/").status_code == 302
