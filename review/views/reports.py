"""What coordinators and admins read about the institution's work: the dashboard and the audit log,
each with its CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import User
from audit.services import audit_record
from exports.csv import csv_response
from review.access import is_coordinator
from review.dashboard import dashboard_build
from review.decorators import admin_only, staff_page
from review.forms import AuditFilterForm
from review.models import Outcome, PeerReview
from review.peer_review import peer_reviews_open
from review.selectors import audit_case_numbers, audit_events, audit_events_keyset


def _coordinators_and_admins(user: User) -> bool:
    return is_coordinator(user)


@require_GET
@staff_page(action="dashboard.view", need=_coordinators_and_admins)
def dashboard(request: HttpRequest) -> HttpResponse:
    board = dashboard_build()
    peak = max([n for _, n in board.weeks] + [1])
    bars = [
        {
            "x": i * 44 + 30,
            "height": round(n / peak * 140),
            "y": 160 - round(n / peak * 140),
            "n": n,
            "week": week,
        }
        for i, (week, n) in enumerate(board.weeks)
    ]
    funnel_peak = max([n for _, n in board.funnel] + [1])
    funnel = [
        {"label": label, "n": n, "width": max(2, round(n / funnel_peak * 360)), "y": i * 34}
        for i, (label, n) in enumerate(board.funnel)
    ]
    peer_open = list(peer_reviews_open()[:50])
    return render(
        request,
        "review/dashboard.html",
        {
            "peer_open": peer_open,
            "peer_disagreements": sum(r.verdict == PeerReview.Verdict.DISAGREE for r in peer_open),
            "peer_waiting": sum(r.verdict == PeerReview.Verdict.PENDING for r in peer_open),
            "board": board,
            "bars": bars,
            "funnel": funnel,
            "surgeries_this_month": board.month_outcomes.get(Outcome.Kind.SURGERY_SCHEDULED.label, 0),
        },
    )


@require_GET
@staff_page(action="dashboard.export", need=_coordinators_and_admins)
def dashboard_csv(request: HttpRequest) -> StreamingHttpResponse:
    board = dashboard_build()
    audit_record(request=request, action="dashboard.export")
    rows: list[list[Any]] = [["referrals_per_week", week.isoformat(), n] for week, n in board.weeks]
    rows += [["funnel", label, n] for label, n in board.funnel]
    rows += [
        ["turnaround", "released", board.released_count],
        ["turnaround", "on_time", board.on_time_count],
        [
            "turnaround",
            "median_days",
            board.median_turnaround_days if board.median_turnaround_days is not None else "",
        ],
        ["turnaround", "promise_business_days", board.turnaround_business_days],
        ["this_month", "referrals", board.month_referrals],
    ]
    rows += [["outcomes_this_month", label, n] for label, n in board.month_outcomes.items()]
    rows += [["outcomes_total", label, n] for label, n in board.outcome_totals]
    rows += [
        [f"revenue_last_{board.revenue_weeks}_weeks", total.currency.upper(), total.display]
        for total in board.revenue
    ]
    return csv_response(filename="dashboard.csv", header=["section", "label", "value"], rows=rows)


# --- Audit log ----------------------------------------------------------------------------------


@require_GET
@staff_page(action="audit.view", need=admin_only)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_events(**{k: v for k, v in filters.items() if v})
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    numbers = audit_case_numbers(list(page.object_list))
    for event in page.object_list:
        event.case_number = numbers.get(event.case_id or 0, "")  # type: ignore[attr-defined]
    params = request.GET.copy()
    params.pop("page", None)
    audit_record(request=request, action="audit.view")
    return render(
        request,
        "review/audit.html",
        {"form": form, "page": page, "filter_query": params.urlencode()},
    )


@require_GET
@staff_page(action="audit.export", need=admin_only)
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    form = AuditFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    audit_record(request=request, action="audit.export")
    events = audit_events(**{k: v for k, v in filters.items() if v})
    zone = timezone.get_current_timezone()  # the institution's; rows are written after the view returns

    def rows() -> Iterator[list[Any]]:
        for chunk in audit_events_keyset(events):
            numbers = audit_case_numbers(chunk)
            for e in chunk:
                yield [
                    timezone.localtime(e.at, zone).isoformat(),
                    e.actor_email,
                    e.action,
                    "allowed" if e.allowed else "refused",
                    numbers.get(e.case_id, "") if e.case_id else "",
                    e.object_ref,
                    e.ip_address or "",
                    e.detail,
                ]

    return csv_response(
        filename="audit-log.csv",
        header=["at", "who", "action", "result", "case", "object", "ip", "detail"],
        rows=rows(),
    )
