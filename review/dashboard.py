"""The institution's dashboard: referrals per week, the funnel, turnaround and outcomes.

Everything is counted by PostgreSQL: a handful of aggregate queries whatever the number of
cases (it used to load every released case and every outcome into Python;
``tests/benchmarks/bench_dashboard.py`` measures it at 10,000 cases). The promised date of a
case without a stored ``due_at`` is computed in SQL by ``promised_sql``, the same business-day
arithmetic as ``review.selectors.business_days_add`` (a test compares the two hour by hour).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from imaging.models import Upload
from intake.models import Case
from payments.selectors import RevenueTotal, revenue_total
from review.models import Opinion, Outcome
from review.selectors import turnaround_business_days_get


@dataclass
class Dashboard:
    weeks: list[tuple[dt.date, int]]
    funnel: list[tuple[str, int]]
    released_count: int
    on_time_count: int
    median_turnaround_days: float | None
    turnaround_business_days: int
    month_referrals: int
    month_outcomes: dict[str, int]
    outcome_totals: list[tuple[str, int]]
    # Requests patients started and have not sent yet (not in the queue until they do).
    drafts_count: int
    # Net card revenue per currency over the same weeks as the chart (payments formats it).
    revenue: list[RevenueTotal]
    revenue_weeks: int


def promised_sql(start: str, days: str) -> str:
    """SQL for ``business_days_add(start, days)``: ``start`` (a timestamptz expression) moved
    forward by ``days`` (an integer expression) working days, same time of day, on the wall
    clock of the current time zone as the Python function works. A start on a weekend counts
    from the next Monday at 00:00.

    With ``wd`` the start's weekday (Monday 0 .. Friday 4), N working days later is
    ``N + 2 * floor((wd + N) / 5)`` calendar days later: each time the count passes a Friday
    it skips a weekend.
    """
    # A zone name from tzdata (validated when the institution chose it): letters, digits, "/",
    # "_", "+", "-"; anything else would not reach this SQL.
    zone = timezone.get_current_timezone_name()
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", zone):
        raise ValueError("unexpected time zone name")
    local = f"({start} AT TIME ZONE '{zone}')"
    dow = f"EXTRACT(ISODOW FROM {local})::int"
    next_monday = f"date_trunc('day', {local}) + (8 - {dow}) * interval '1 day'"
    begin = f"(CASE WHEN {dow} >= 6 THEN {next_monday} ELSE {local} END)"
    weekday = f"(CASE WHEN {dow} >= 6 THEN 0 ELSE {dow} - 1 END)"
    offset = f"(({days}) + 2 * floor(({weekday} + ({days})) / 5.0))::int"
    return f"(({begin} + {offset} * interval '1 day') AT TIME ZONE '{zone}')"


def turnaround_totals(*, turnaround_business_days: int) -> tuple[int, int, float | None]:
    """(released, released on time, median days from submission to release) over every
    released case, in one query."""
    case_table = Case._meta.db_table
    opinion_table = Opinion._meta.db_table
    # An integer from the settings row, written into the SQL (it appears twice in it).
    promised = promised_sql("c.submitted_at", str(int(turnaround_business_days)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*),
                   count(*) FILTER (WHERE o.released_at <= COALESCE(c.due_at, {promised})),
                   percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY EXTRACT(EPOCH FROM o.released_at - c.submitted_at) / 86400.0
                   )
            FROM {case_table} c JOIN {opinion_table} o ON o.case_id = c.id
            WHERE o.released_at IS NOT NULL AND c.submitted_at IS NOT NULL
            """,  # noqa: S608 (table names from the models, an int)
        )
        released, on_time, median = cursor.fetchone()
    return int(released), int(on_time), float(median) if median is not None else None


def dashboard_build(*, weeks: int = 12) -> Dashboard:
    # Weeks and months are the institution's (the current time zone: TruncWeek uses it too).
    now = timezone.localtime()
    turnaround = turnaround_business_days_get()
    since = now - dt.timedelta(weeks=weeks)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    per_week = {
        week.date(): n
        for week, n in Case.objects.filter(submitted_at__gte=since)
        .annotate(week=TruncWeek("submitted_at"))
        .values_list("week")
        .annotate(n=Count("id"))
        .values_list("week", "n")
    }
    this_monday = (now - dt.timedelta(days=now.weekday())).date()
    week_rows = [
        (monday, per_week.get(monday, 0))
        for monday in (this_monday - dt.timedelta(weeks=i) for i in range(weeks - 1, -1, -1))
    ]

    counts = Case.objects.aggregate(
        started=Count("id"),
        drafts=Count("id", filter=Q(status=Case.Status.DRAFT)),
        uploaded=Count("id", filter=Q(Exists(Upload.objects.filter(case=OuterRef("pk"))))),
        # Paid, or free at an institution without a fee: past the payment step.
        paid=Count("id", filter=~Q(status__in=[Case.Status.DRAFT, Case.Status.AWAITING_PAYMENT])),
        submitted=Count("id", filter=Q(submitted_at__isnull=False)),
        released=Count("id", filter=Q(opinion__released_at__isnull=False)),
        month_referrals=Count("id", filter=Q(submitted_at__gte=month_start)),
    )
    funnel = [
        ("Started", counts["started"]),
        ("Uploaded", counts["uploaded"]),
        ("Paid or free", counts["paid"]),
        ("Submitted", counts["submitted"]),
        ("Opinion released", counts["released"]),
    ]
    released, on_time, median = turnaround_totals(turnaround_business_days=turnaround)
    outcome_rows = (
        Outcome.objects.order_by()
        .values("kind")
        .annotate(total=Count("id"), month=Count("id", filter=Q(recorded_at__gte=month_start)))
    )
    totals = {row["kind"]: row["total"] for row in outcome_rows}
    month = {row["kind"]: row["month"] for row in outcome_rows}
    return Dashboard(
        weeks=week_rows,
        funnel=funnel,
        released_count=released,
        on_time_count=on_time,
        median_turnaround_days=round(median, 1) if median is not None else None,
        turnaround_business_days=turnaround,
        month_referrals=counts["month_referrals"],
        month_outcomes={label: month.get(kind, 0) for kind, label in Outcome.Kind.choices},
        outcome_totals=[(label, totals.get(kind, 0)) for kind, label in Outcome.Kind.choices],
        drafts_count=counts["drafts"],
        revenue=revenue_total(since=since),
        revenue_weeks=weeks,
    )
