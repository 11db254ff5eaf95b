"""Reads for the review workspace: settings, the queue, the roster, the dashboard, the audit log.

Every case query starts from ``review.access.cases_visible_to(user)`` so a reviewer restricted
to their own cases never sees another's, and nothing crosses the institution's schema.

The dashboard lives in ``review.dashboard``. Every read of the workspace starts from the
same visibility rule and the same business-day arithmetic, kept in one place; the sections
(settings, business days, queue, roster, dashboard, audit log) are headed.
"""

# long module: every workspace read starts from the same visibility rule
# (review.access.cases_visible_to) and its annotations; kept together so none starts elsewhere.

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    Case as When_,
)
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from imaging.models import Report, Study
from intake.models import Case
from review.access import cases_visible_to
from review.models import PeerReview, ReviewerProfile, ReviewSettings
from tenants.models import Institution, InstitutionSettings
from tenants.schema import current_institution

QUEUE_PAGE_SIZE = 50

# The states a case moves through, in the order the queue shows them, with the words staff use.
# Drafts are not among them: a draft is the patient's unfinished work, not yet consented to or
# sent (staff cannot open it either, see ``review.access``); the dashboard counts them instead.
QUEUE_STATES: tuple[tuple[str, str], ...] = (
    (Case.Status.AWAITING_PAYMENT, "Awaiting payment"),
    (Case.Status.SUBMITTED, "Unassigned"),
    (Case.Status.ASSIGNED, "Assigned"),
    (Case.Status.IN_REVIEW, "In review"),
    (Case.Status.INFO_REQUESTED, "More information requested"),
    (Case.Status.OPINION_DRAFTED, "Opinion signed, to release"),
    (Case.Status.RELEASED, "Released"),
    (Case.Status.CLOSED, "Closed"),
    (Case.Status.DECLINED, "Declined"),
    (Case.Status.WITHDRAWN, "Withdrawn by the patient"),
)
# "Open" (the queue's default): cases an institution still owes an answer.
OPEN_STATES = (
    Case.Status.SUBMITTED,
    Case.Status.ASSIGNED,
    Case.Status.IN_REVIEW,
    Case.Status.INFO_REQUESTED,
    Case.Status.OPINION_DRAFTED,
)
# Cases a reviewer is still working on: what counts against their maximum.
REVIEWER_LOAD_STATES = (
    Case.Status.ASSIGNED,
    Case.Status.IN_REVIEW,
    Case.Status.INFO_REQUESTED,
    Case.Status.OPINION_DRAFTED,
)


# Rows read during the current request, per schema (``review_settings_cached``); None outside one.
_settings_cache: ContextVar[dict[str, ReviewSettings] | None] = ContextVar("review_settings", default=None)


@contextmanager
def review_settings_cached() -> Iterator[None]:
    """Within this block ``review_settings_get`` reads the row once per schema.

    Wrapped around each request by ``review.middleware.StaffSecurityMiddleware``: the idle
    timeout, the access helper and the page all need the settings, and one read is enough for a
    request (a change made by the request itself goes through ``review_settings_update``, which
    updates the cached row in place)."""
    token = _settings_cache.set({})
    try:
        yield
    finally:
        _settings_cache.reset(token)


def review_settings_get() -> ReviewSettings:
    """The institution's review settings; the defaults (an unsaved row) while none was saved.

    A read only: the row is written at go-live and when an institution is created
    (``institutions.institution_settings.review_settings_sync``) and by
    ``review.services.review_settings_update``, never here."""
    cache = _settings_cache.get()
    schema = str(getattr(connection, "schema_name", ""))
    if cache is not None and schema in cache:
        return cache[schema]
    settings_row = ReviewSettings.objects.order_by("id").first() or ReviewSettings()
    if cache is not None:
        cache[schema] = settings_row
    return settings_row


TURNAROUND_DEFAULT = 7


def turnaround_business_days_get() -> int:
    """The institution's turnaround promise, from its one home: the service settings its admin
    sets at onboarding and in the settings (and the roster page's settings form)."""
    institution = current_institution()
    row: InstitutionSettings | None
    if Institution.service_settings.is_cached(institution):  # fetched with the request's domain
        row = getattr(institution, "service_settings", None)
    else:
        row = (
            InstitutionSettings.objects.filter(institution=institution)
            .only("turnaround_business_days")
            .first()
        )
    return row.turnaround_business_days if row else TURNAROUND_DEFAULT


# --- Business days ------------------------------------------------------------------------------


def business_days_add(start: dt.datetime, days: int) -> dt.datetime:
    """``start`` moved forward by ``days`` working days (Monday to Friday), same time of day.

    Counted on the wall clock of the current time zone (the institution's, activated for its
    requests and tasks): weekends are the institution's, and a DST change in between keeps the
    time of day. A start on a weekend counts from the next Monday, as a case submitted on
    Saturday is first seen on Monday."""
    moment = timezone.localtime(start)
    while moment.weekday() >= 5:
        moment = (moment + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    remaining = days
    while remaining > 0:
        moment += dt.timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment


def business_days_subtract(end: dt.datetime, days: int) -> dt.datetime:
    moment = timezone.localtime(end)
    remaining = days
    while remaining > 0:
        moment -= dt.timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment


def case_due_at(*, case: Case, turnaround_business_days: int) -> dt.datetime | None:
    """The promised answer date: the stored ``due_at``, else submission plus the turnaround."""
    if case.due_at:
        return case.due_at
    if case.submitted_at:
        return business_days_add(case.submitted_at, turnaround_business_days)
    return None


def _due_sort_expression(turnaround_business_days: int) -> Coalesce:
    # Calendar days that cover N business days (N working days span at most N * 7/5 + 2 days):
    # only for ordering cases without a stored due date among those with one.
    approx = dt.timedelta(days=math.ceil(turnaround_business_days * 7 / 5))
    return Coalesce(
        "due_at",
        ExpressionWrapper(F("submitted_at") + Value(approx), output_field=DateTimeField()),
    )


def open_cases_q() -> Q:
    """Cases the institution still owes an answer: the open states, and released (or closed)
    cases whose patient asked a follow-up question nobody answered yet."""
    from review.models import FollowUpQuestion

    unanswered = FollowUpQuestion.objects.filter(case=OuterRef("pk"), answered_at__isnull=True)
    return Q(status__in=OPEN_STATES) | Q(
        Exists(unanswered), status__in=[Case.Status.RELEASED, Case.Status.CLOSED]
    )


# --- Queue --------------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    state: str = ""  # one of QUEUE_STATES, "open" or "all" ("" = "open")
    reviewer_id: int | None = None  # 0 = unassigned
    due: str = ""  # "overdue", "soon" or ""
    urgency: str = ""
    search: str = ""  # never from a URL: kept in the session (see views.queue_search)

    @classmethod
    def from_params(cls, params: Any, *, search: str = "") -> QueueFilters:
        states = {value for value, _ in QUEUE_STATES} | {"open", "all"}
        state = params.get("state", "")
        reviewer = params.get("reviewer", "")
        due = params.get("due", "")
        urgency = params.get("urgency", "")
        return cls(
            state=state if state in states else "",
            reviewer_id=int(reviewer) if reviewer.isascii() and reviewer.isdigit() else None,
            due=due if due in {"overdue", "soon"} else "",
            urgency=urgency if urgency in Case.Urgency.values else "",
            search=search.strip()[:100],
        )


@dataclass
class QueueRow:
    case: Case
    due_at: dt.datetime | None
    overdue: bool
    due_soon: bool
    mine: bool
    study_count: int
    report_count: int
    # A study in the case names someone other than the declared patient (imaging.identity).
    identity_flag: bool = False
    # A peer review holds the release (waiting or disagreeing); ``peer_for_me``: it waits for this user.
    peer_hold: bool = False
    peer_for_me: bool = False


@dataclass
class Queue:
    rows: list[QueueRow]
    page: Page[Case]
    state_counts: dict[str, int]
    open_count: int
    total_count: int
    filters: QueueFilters
    reviewers: list[User] = field(default_factory=list)


def case_queue(*, user: User, filters: QueueFilters, page_number: int = 1) -> Queue:
    """One page of the queue for ``user``, in a fixed number of queries whatever the case count:
    state counts (1), page count (1), page rows with their assignment and payment (1), the
    reviewer list (1) and the settings (1)."""
    settings_row = review_settings_get()
    now = timezone.now()
    base = cases_visible_to(user)

    counts = dict(base.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    state_counts = {value: counts.get(value, 0) for value, _ in QUEUE_STATES}

    cases = base
    state = filters.state or "open"
    if state == "open":
        cases = cases.filter(open_cases_q())
    elif state != "all":
        cases = cases.filter(status=state)
    if filters.reviewer_id == 0:
        cases = cases.filter(assignment__isnull=True)
    elif filters.reviewer_id:
        cases = cases.filter(assignment__reviewer_id=filters.reviewer_id)
    if filters.urgency:
        cases = cases.filter(urgency=filters.urgency)
    if filters.search:
        cases = cases.filter(Q(number__icontains=filters.search) | Q(patient_name__icontains=filters.search))
    turnaround = turnaround_business_days_get()
    if filters.due == "overdue":
        cutoff = business_days_subtract(now, turnaround)
        cases = cases.filter(status__in=OPEN_STATES).filter(
            Q(due_at__lt=now) | Q(due_at__isnull=True, submitted_at__lt=cutoff)
        )
    elif filters.due == "soon":
        soon_end = business_days_add(now, settings_row.soon_due_business_days)
        cutoff_lo = business_days_subtract(now, turnaround)
        cutoff_hi = business_days_subtract(soon_end, turnaround)
        cases = cases.filter(status__in=OPEN_STATES).filter(
            Q(due_at__gte=now, due_at__lt=soon_end)
            | Q(due_at__isnull=True, submitted_at__gte=cutoff_lo, submitted_at__lt=cutoff_hi)
        )

    study_counts = (
        Study.objects.filter(case=OuterRef("pk"))
        .order_by()
        .values("case")
        .annotate(n=Count("id"))
        .values("n")
    )
    report_counts = (
        Report.objects.filter(case=OuterRef("pk"))
        .order_by()
        .values("case")
        .annotate(n=Count("id"))
        .values("n")
    )
    holding = PeerReview.objects.filter(
        case=OuterRef("pk"), overridden_at__isnull=True, case__status=Case.Status.OPINION_DRAFTED
    ).exclude(verdict=PeerReview.Verdict.AGREE)
    cases = (
        cases.select_related("assignment__reviewer", "payment")
        .annotate(
            peer_hold=Exists(holding),
            peer_for_me=Exists(holding.filter(reviewer_id=user.pk, verdict=PeerReview.Verdict.PENDING)),
        )
        .annotate(
            mine=When_(
                When(assignment__reviewer_id=user.pk, then=Value(0)),
                When(peer_for_me=True, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            due_sort=_due_sort_expression(turnaround),
            study_count=Coalesce(Subquery(study_counts, output_field=IntegerField()), 0),
            report_count=Coalesce(Subquery(report_counts, output_field=IntegerField()), 0),
            identity_flag=Exists(
                Study.objects.included().filter(case=OuterRef("pk"), identity_status=Study.Identity.MISMATCH)
            ),
        )
        .order_by("mine", F("due_sort").asc(nulls_last=True), "created", "id")
    )
    paginator: Paginator[Case] = Paginator(cases, QUEUE_PAGE_SIZE)
    page = paginator.get_page(page_number)
    soon_end = business_days_add(now, settings_row.soon_due_business_days)
    rows = []
    for case in page.object_list:
        due = case_due_at(case=case, turnaround_business_days=turnaround)
        still_open = case.status in OPEN_STATES
        rows.append(
            QueueRow(
                case=case,
                due_at=due,
                overdue=bool(still_open and due and due < now),
                due_soon=bool(still_open and due and now <= due < soon_end),
                mine=case.mine == 0,  # type: ignore[attr-defined]
                study_count=case.study_count,  # type: ignore[attr-defined]
                report_count=case.report_count,  # type: ignore[attr-defined]
                identity_flag=case.identity_flag,  # type: ignore[attr-defined]
                peer_hold=case.peer_hold,  # type: ignore[attr-defined]
                peer_for_me=case.peer_for_me,  # type: ignore[attr-defined]
            )
        )
    return Queue(
        rows=rows,
        page=page,
        state_counts=state_counts,
        open_count=base.filter(open_cases_q()).count(),
        total_count=paginator.count,
        filters=filters,
        reviewers=list(reviewers_active()),
    )


# --- Roster -------------------------------------------------------------------------------------


def reviewers_active() -> QuerySet[User]:
    return User.objects.filter(is_reviewer=True, is_active=True).order_by("full_name", "email")


@dataclass
class RosterRow:
    user: User
    profile: ReviewerProfile | None
    open_cases: int


def roster_list() -> list[RosterRow]:
    """Every staff member with their reviewer profile and open-case load (3 queries)."""
    staff = list(
        User.objects.filter(Q(is_reviewer=True) | Q(is_coordinator=True) | Q(is_institution_admin=True))
        .select_related("reviewer_profile")
        .order_by("full_name", "email")
    )
    loads = reviewer_loads()
    return [
        RosterRow(user=u, profile=getattr(u, "reviewer_profile", None), open_cases=loads.get(u.pk, 0))
        for u in staff
    ]


def reviewer_loads() -> dict[int, int]:
    """Open cases per reviewer id."""
    return dict(
        Case.objects.filter(status__in=REVIEWER_LOAD_STATES, assignment__isnull=False)
        .values_list("assignment__reviewer_id")
        .annotate(n=Count("id"))
        .values_list("assignment__reviewer_id", "n")
    )


# --- Audit log ----------------------------------------------------------------------------------


def audit_events(*, action: str = "", case_number: str = "", actor_email: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if action:
        events = events.filter(action__startswith=action)
    if actor_email:
        events = events.filter(actor_email__iexact=actor_email)
    if case_number:
        case_ids = Case.objects.filter(number__iexact=case_number).values("pk")
        events = events.filter(case_id__in=case_ids)
    return events.order_by("-at", "-id")


def audit_case_numbers(events: list[AuditEvent]) -> dict[int, str]:
    """Case numbers of a page of events, in one query (the FK has no constraint: the case may
    have been deleted, and the event stays)."""
    ids = {e.case_id for e in events if e.case_id}
    return {pk: number or "" for pk, number in Case.objects.filter(pk__in=ids).values_list("pk", "number")}


AUDIT_EXPORT_CHUNK = 2000


def audit_events_keyset(events: QuerySet[AuditEvent], *, chunk: int = 0) -> Iterator[list[AuditEvent]]:
    """``events`` newest first in chunks of ``chunk`` rows, each read with ``id < last id``
    (keyset pagination), so the export of a million rows reads each row once and holds one chunk
    in memory; an OFFSET makes PostgreSQL walk past every row of the earlier chunks again.

    Ordered by id, which is the order rows were written (the hash chain's); ``at`` comes from
    the writing process's clock and may disagree by a moment between processes."""
    chunk = chunk or AUDIT_EXPORT_CHUNK
    last_id: int | None = None
    while True:
        page = events.order_by("-id")
        if last_id is not None:
            page = page.filter(id__lt=last_id)
        rows = list(page[:chunk])
        if not rows:
            return
        yield rows
        last_id = rows[-1].pk
