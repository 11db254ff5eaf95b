"""The dashboard with 10,000 cases, and the audit-log CSV export of a million rows.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_dashboard.py [--cases 10000] [--audit-rows 1000000]

It creates its own throw-away database (``test_secondread_bench_dashboard``), seeds the demo,
adds the cases to ``neuro`` (a mix of states; the released ones with an opinion released 1-20
days after submission, some with outcomes) and the audit rows (one INSERT ... SELECT), then
measures through the whole Django stack:

- the dashboard page as a coordinator: time and SQL queries;
- the audit CSV export as the admin: time to the last byte, rows, and the peak of Python memory
  allocated while it streams (tracemalloc) beside the process's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.benchmarks.pages import bench_django_setup, demo_database, page_measure, staff_client

bench_django_setup("bench_dashboard")

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402


def populate_cases(count: int) -> None:
    from accounts.models import User
    from intake.models import Case
    from review.models import Opinion, Outcome

    rng = random.Random(42)  # noqa: S311 (reproducible test data)
    owner = User.objects.get(email="patient@neuro.example.com")
    reviewer = User.objects.get(email="reviewer1@neuro.example.com")
    states = ["submitted", "assigned", "in_review", "released", "released", "released", "closed", "draft"]
    now = timezone.now()
    Case.objects.bulk_create(
        [
            Case(
                owner=owner,
                status=(status := rng.choice(states)),
                number=f"DASH-{i:06d}",
                patient_name="Bench Patient",
                question="Benchmark question",
                submitted_at=None
                if status == "draft"
                else now - dt.timedelta(hours=rng.randint(1, 24 * 120)),
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    released = list(
        Case.objects.filter(number__startswith="DASH-", status__in=["released", "closed"]).only(
            "pk", "submitted_at"
        )
    )
    Opinion.objects.bulk_create(
        [
            Opinion(
                case=c,
                author=reviewer,
                signed_at=c.submitted_at,
                released_at=(c.submitted_at or now) + dt.timedelta(hours=rng.randint(24, 24 * 20)),
            )
            for c in released
        ],
        batch_size=2000,
    )
    kinds = [k for k, _ in Outcome.Kind.choices]
    Outcome.objects.bulk_create(
        [
            Outcome(case=c, kind=rng.choice(kinds), recorded_by=reviewer)
            for c in released
            if rng.random() < 0.4
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"populated: {count} cases, {len(released)} released")


def populate_audit(rows: int) -> None:
    from audit.models import AuditEvent

    table = AuditEvent._meta.db_table
    start = time.perf_counter()
    with connection.cursor() as cursor:
        # Not chained (seq NULL): the export reads rows, it does not verify the chain.
        cursor.execute(
            f"""
            INSERT INTO {table} (at, actor_email, action, object_ref, ip_address, allowed, detail, row_hash)
            SELECT now() - (g || ' seconds')::interval, 'coordinator@neuro.example.com', 'case.view',
                   'bench-' || g, '127.0.0.1', true, '{{"n": 1}}'::jsonb, ''
            FROM generate_series(1, %s) g
            """,  # noqa: S608 (the table name from the model)
            [rows],
        )
        cursor.execute("ANALYZE")
    print(f"populated: {rows} audit rows in {time.perf_counter() - start:.0f} s")


def measure_export(client: Client) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    response = client.get("/workspace/audit.csv")
    assert response.status_code == 200
    lines = 0
    size = 0
    for piece in response.streaming_content:  # type: ignore[attr-defined]
        size += len(piece)
        lines += piece.count(b"\n")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"audit export (admin)             {lines - 1} rows, {size / 2**20:.0f} MiB in {elapsed:.1f} s;   "
        f"Python peak while streaming {peak / 2**20:.1f} MiB;   process peak RSS {rss:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--audit-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    with demo_database():
        with schema_context("neuro"):
            populate_cases(args.cases)
        print(f"load average: {os.getloadavg()[0]:.1f}")
        coordinator = staff_client("coordinator@neuro.example.com")
        page_measure(coordinator, "dashboard (coordinator)", "/workspace/dashboard/", args.repeat)
        with schema_context("neuro"):
            populate_audit(args.audit_rows)
        # The test settings keep every query for CaptureQueriesContext only inside one; DEBUG is
        # off, so the million rows' queries are not kept.
        measure_export(staff_client("admin@neuro.example.com"))


if __name__ == "__main__":
    main()
