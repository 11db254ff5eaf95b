"""The dashboard counted by PostgreSQL and the audit export read by keyset (issue 15, item 10;
tests/benchmarks/bench_dashboard.py measures both at 10,000 cases and a million audit rows)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from audit.services import audit_append
from intake.models import Case
from review import selectors
from review.dashboard import promised_sql
from review.models import Opinion
from review.selectors import business_days_add
from tenants.models import Institution
from tests.cases import user_in
from tests.staff import staff_force_login


def test_it_computes_the_promised_date_in_sql_as_python_does(db: None) -> None:
    start = dt.datetime(2026, 3, 2, 0, 30, tzinfo=dt.UTC)  # a Monday
    moments = [start + dt.timedelta(hours=7 * i) for i in range(48)]  # every weekday and weekend
    expression = promised_sql("t.start", "t.days")
    with connection.cursor() as cursor:
        for moment in moments:
            for days in (0, 1, 2, 4, 5, 7, 10, 23):
                cursor.execute(
                    f"SELECT {expression} FROM (SELECT %s::timestamptz AS start, %s::int AS days) t",  # noqa: S608
                    [moment, days],
                )
                assert cursor.fetchone()[0] == business_days_add(moment, days), (moment, days)


def _released(case: Case, *, days_after: float, due_in_days: float | None = None) -> None:
    author = Case.objects.get(pk=case.pk).owner  # any account; the dashboard reads only the dates
    assert case.submitted_at is not None
    if due_in_days is not None:
        Case.objects.filter(pk=case.pk).update(due_at=case.submitted_at + dt.timedelta(days=due_in_days))
    Opinion.objects.create(
        case=case, author=author, released_at=case.submitted_at + dt.timedelta(days=days_after)
    )


def test_it_counts_released_on_time_and_the_median_in_the_database(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    client = staff_client("coordinator")
    before = client.get("/workspace/dashboard/").context["board"]
    early = make_case(status=Case.Status.RELEASED, submitted_days_ago=30)
    late = make_case(status=Case.Status.RELEASED, submitted_days_ago=30)
    promised_late = make_case(status=Case.Status.RELEASED, submitted_days_ago=30)
    with schema_context(neuro.schema_name):
        _released(early, days_after=1)  # well within 7 business days
        _released(late, days_after=20)  # past them
        _released(promised_late, days_after=20, due_in_days=25)  # the stored due date counts
    board = client.get("/workspace/dashboard/").context["board"]
    assert board.released_count == before.released_count + 3
    assert board.on_time_count == before.on_time_count + 2
    if before.released_count == 0:
        assert board.median_turnaround_days == 20.0


def test_it_builds_the_dashboard_in_the_same_queries_whatever_the_case_count(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    client = staff_client("coordinator")
    client.get("/workspace/dashboard/")
    with CaptureQueriesContext(connection) as few:
        client.get("/workspace/dashboard/")
    for _ in range(6):
        case = make_case(status=Case.Status.RELEASED, with_files=False, submitted_days_ago=3)
        with schema_context(neuro.schema_name):
            _released(case, days_after=1)
    with CaptureQueriesContext(connection) as many:
        client.get("/workspace/dashboard/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_it_exports_every_audit_row_once_newest_first_across_chunks(
    neuro: Institution, staff_client: Callable[[str], Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "AUDIT_EXPORT_CHUNK", 7)
    with schema_context(neuro.schema_name):
        admin = user_in(neuro, "admin@neuro.example.com")
        for i in range(30):
            audit_append(actor=admin, actor_email=admin.email, action="bench.row", object_ref=f"row-{i}")
        expected = list(
            AuditEvent.objects.filter(action="bench.row").order_by("-id").values_list("object_ref", flat=True)
        )
    with CaptureQueriesContext(connection) as captured:
        response = staff_client("admin").get("/workspace/audit.csv?action=bench.row")
        body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["object"] for row in rows] == expected
    # Keyset: each chunk asks for ids below the last one; no OFFSET anywhere.
    selects = [
        q["sql"] for q in captured.captured_queries if "audit_auditevent" in q["sql"] and "SELECT" in q["sql"]
    ]
    assert len(selects) >= 5
    assert not any("OFFSET" in sql for sql in selects)


def test_it_refuses_the_audit_export_and_dashboard_to_outsiders(
    neuro_client: Client, cancer_client: Client, staff_client: Callable[[str], Client]
) -> None:
    assert neuro_client.get("/workspace/audit.csv").status_code == 302  # signed out
    assert neuro_client.get("/workspace/dashboard/").status_code == 302
    assert staff_client("coordinator").get("/workspace/audit.csv").status_code == 403  # not an admin
    assert staff_client("reviewer1").get("/workspace/dashboard/").status_code == 403
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    assert patient.get("/workspace/audit.csv").status_code == 403
    assert patient.get("/workspace/dashboard/").status_code == 403
    # Another institution's admin: their session means nothing here.
    staff_force_login(cancer_client, "admin@cancer.example.com")
    neuro_client.cookies = cancer_client.cookies
    assert neuro_client.get("/workspace/audit.csv").status_code == 302
    assert neuro_client.get("/workspace/dashboard.csv").status_code == 302
