"""The workspace queue with 10,000 cases: time per page and number of SQL queries.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_queue.py [--cases 10000]

It creates its own throw-away database (``test_secondread_bench_queue``), migrates it, seeds the
demo, adds the cases to the ``neuro`` institution (a realistic mix of states, assignments,
studies and reports), measures the queue as a coordinator and as a reviewer through the whole
Django stack (middleware, MFA check, template), and drops the database again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.benchmarks.pages import bench_django_setup, demo_database, page_measure, staff_client

bench_django_setup("bench_queue")

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402


def populate(count: int) -> None:
    from accounts.models import User
    from imaging.models import Report, Study
    from intake.models import Case
    from review.models import CaseAssignment

    rng = random.Random(42)  # noqa: S311 (reproducible test data)
    owner = User.objects.get(email="patient@neuro.example.com")
    reviewers = list(User.objects.filter(is_reviewer=True))
    states = [
        (Case.Status.SUBMITTED, 30),
        (Case.Status.ASSIGNED, 15),
        (Case.Status.IN_REVIEW, 15),
        (Case.Status.INFO_REQUESTED, 5),
        (Case.Status.OPINION_DRAFTED, 5),
        (Case.Status.RELEASED, 20),
        (Case.Status.CLOSED, 5),
        (Case.Status.DECLINED, 2),
        (Case.Status.DRAFT, 3),
    ]
    population = [s for s, weight in states for _ in range(weight)]
    now = timezone.now()
    cases = []
    for i in range(count):
        status = rng.choice(population)
        submitted = now - dt.timedelta(hours=rng.randint(1, 24 * 60))
        cases.append(
            Case(
                owner=owner,
                status=status,
                number=f"BENCH-{i:06d}",
                patient_name=f"Patient {rng.randint(1, 10**6)}",
                question="Benchmark question",
                specialty=rng.choice(["neurology", "neurosurgery", "spine"]),
                urgency=rng.choice(["routine", "routine", "soon", "urgent"]),
                submitted_at=None if status == Case.Status.DRAFT else submitted,
            )
        )
    Case.objects.bulk_create(cases, batch_size=2000)
    cases = list(Case.objects.filter(number__startswith="BENCH-").only("pk", "status", "created"))
    assignments = [
        CaseAssignment(case=c, reviewer=rng.choice(reviewers), assigned_at=c.created)
        for c in cases
        if c.status not in (Case.Status.SUBMITTED, Case.Status.DRAFT)
    ]
    CaseAssignment.objects.bulk_create(assignments, batch_size=2000)
    studies = [
        Study(
            case=c, study_instance_uid=f"1.2.826.0.1.{c.pk}.{n}", modalities=rng.choice(["MR", "CT", "MR,CT"])
        )
        for c in cases
        for n in range(rng.randint(0, 3))
    ]
    Study.objects.bulk_create(studies, batch_size=2000)
    reports = [
        Report(case=c, content_type="application/pdf", storage_key=f"reports/bench-{c.pk}.pdf")
        for c in cases
        if rng.random() < 0.7
    ]
    Report.objects.bulk_create(reports, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"populated: {len(cases)} cases, {len(assignments)} assignments, {len(studies)} studies, "
        f"{len(reports)} reports"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with demo_database():
        with schema_context("neuro"):
            populate(args.cases)
        for role in ("coordinator", "reviewer1"):
            client = staff_client(f"{role}@neuro.example.com")
            page_measure(client, f"{role}: open cases, page 1", "/workspace/", args.repeat)
            page_measure(client, f"{role}: all cases, page 40", "/workspace/?state=all&page=40", args.repeat)
            page_measure(client, f"{role}: overdue", "/workspace/?due=overdue", args.repeat)
            client.post("/workspace/search", {"q": "Patient 12"})
            page_measure(
                client, f"{role}: search 'Patient 12' (from session)", "/workspace/?state=all", args.repeat
            )
        # The same page with ten times fewer cases: the query count must not change.
        with schema_context("neuro"):
            from intake.models import Case

            keep = set(
                Case.objects.filter(number__startswith="BENCH-").values_list("pk", flat=True)[
                    : args.cases // 10
                ]
            )
            Case.objects.filter(number__startswith="BENCH-").exclude(pk__in=keep).delete()
        page_measure(
            staff_client("coordinator@neuro.example.com"),
            f"coordinator: open cases with {args.cases // 10} cases",
            "/workspace/",
            args.repeat,
        )


if __name__ == "__main__":
    main()
