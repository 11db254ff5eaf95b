"""Telling staff what needs them: an in-app list and, per person's preference, an email.

Who hears of what:

- a new case: coordinators and admins;
- a case assigned: the reviewer it went to;
- a follow-up question, the information a patient was asked for: the assigned reviewer and the
  coordinators;
- due tomorrow, overdue: the assigned reviewer (or the coordinators while unassigned), once per
  case per day (``cases_due_notify``, daily through ``review.cases_due_notify_all``).

Each notice is a ``StaffNotification`` row with a unique key written in the caller's
transaction, its email through the outbox (``branded_email_send`` with the same key): a repeated
step writes neither twice. Emails name the case number and what happened, never the patient.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from branding.emails import branded_email_send
from intake.models import Case
from review.models import NotificationPreference, StaffNotification
from tenants.schema import current_institution

logger = logging.getLogger(__name__)
Kind = StaffNotification.Kind


def coordinators() -> QuerySet[User]:
    return User.objects.filter(Q(is_coordinator=True) | Q(is_institution_admin=True), is_active=True)


def _case_people(case: Case) -> list[User]:
    """The assigned reviewer and the coordinators."""
    people = list(coordinators())
    assignment = getattr(case, "assignment", None)
    if assignment is not None and assignment.reviewer.is_active:
        people.append(assignment.reviewer)
    return people


def staff_notify(*, users: list[User], kind: str, case: Case, key: str) -> int:
    """Notify each of ``users`` once for ``key``; returns how many were new."""
    sent = 0
    institution = current_institution()
    for user in {u.pk: u for u in users}.values():
        row_key = f"{key}:{user.pk}"[:200]
        try:
            with transaction.atomic():
                StaffNotification.objects.create(user=user, kind=kind, case=case, key=row_key)
        except IntegrityError:
            continue  # told already
        sent += 1
        preference = NotificationPreference.objects.filter(user=user).first()
        if preference is not None and kind in preference.email_off:
            continue
        branded_email_send(
            institution=institution,
            to=[user.email],
            subject=f"{Kind(kind).label}: {case.number}",
            template="review/email/staff_notice",
            context={
                "what": Kind(kind).label,
                "case_number": case.number,
                "case_path": reverse(
                    "review:case", args=[case.public_id], urlconf=settings.ROOT_URLCONF
                ).lstrip("/"),
            },
            dedupe_key=f"staff-notice:{row_key}",
        )
    return sent


def case_submitted_notify(*, case: Case) -> int:
    return staff_notify(users=list(coordinators()), kind=Kind.NEW_CASE, case=case, key=f"new:{case.pk}")


def case_assigned_notify(*, case: Case, reviewer: User, at: dt.datetime) -> int:
    return staff_notify(
        users=[reviewer], kind=Kind.ASSIGNED, case=case, key=f"assigned:{case.pk}:{at.isoformat()}"
    )


def follow_up_asked_notify(*, case: Case, question_id: int) -> int:
    return staff_notify(
        users=_case_people(case), kind=Kind.FOLLOW_UP, case=case, key=f"follow-up:{question_id}"
    )


def info_received_notify(*, case: Case) -> int:
    stamp = case.status_changed.isoformat() if case.status_changed else ""
    return staff_notify(
        users=_case_people(case), kind=Kind.INFO_RECEIVED, case=case, key=f"info:{case.pk}:{stamp}"
    )


def case_status_changed_notify(*, case: Case, previous: str, status: str, **_: object) -> None:
    """``intake.workflow.case_status_changed``: a case sent (new), or back from the patient
    after they were asked for more information."""
    if status == Case.Status.SUBMITTED and previous in (Case.Status.DRAFT, Case.Status.AWAITING_PAYMENT):
        case_submitted_notify(case=case)
    elif previous == Case.Status.INFO_REQUESTED and status == Case.Status.SUBMITTED:
        info_received_notify(case=case)


def cases_due_notify(*, now: dt.datetime | None = None) -> int:
    """Notices for open cases due tomorrow or overdue, once per case per day (run daily; a
    second run the same day writes nothing)."""
    from review.selectors import OPEN_STATES, case_due_at, turnaround_business_days_get

    now = now or timezone.now()
    today = timezone.localdate(now)
    turnaround = turnaround_business_days_get()
    sent = 0
    cases = Case.objects.filter(status__in=OPEN_STATES).select_related("assignment__reviewer")
    for case in cases.iterator(chunk_size=500):
        due = case_due_at(case=case, turnaround_business_days=turnaround)
        if due is None:
            continue
        due_day = timezone.localdate(due)
        if due < now:
            kind = Kind.OVERDUE
        elif due_day == today + dt.timedelta(days=1):
            kind = Kind.DUE_TOMORROW
        else:
            continue
        assignment = getattr(case, "assignment", None)
        users = (
            [assignment.reviewer] if assignment and assignment.reviewer.is_active else list(coordinators())
        )
        with transaction.atomic():
            sent += staff_notify(users=users, kind=kind, case=case, key=f"due:{case.pk}:{today.isoformat()}")
    return sent


def notifications_of(user: User, *, limit: int = 100) -> list[StaffNotification]:
    return list(StaffNotification.objects.filter(user=user).select_related("case")[:limit])


def notifications_unread_count(user: User) -> int:
    return StaffNotification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_mark_read(user: User) -> int:
    return StaffNotification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


def email_preferences_set(*, user: User, emailed: set[str]) -> NotificationPreference:
    preference, _ = NotificationPreference.objects.get_or_create(user=user)
    preference.email_off = sorted(set(Kind.values) - emailed)
    preference.save(update_fields=["email_off"])
    return preference
