"""Usage figures for the operator console, measured by a periodic sweep, never per page view.

At 1,000 institutions the console used to run one ``UNION ALL`` with three subqueries per
schema on every view (5.2 s, up to 2.9 GB in one backend) and listed every stored object of
every institution. Now the housekeeping sweep (tenants.sweeps, in batches) measures each
institution with one small query in its own schema and keeps the result in
``InstitutionUsage`` (public schema); the console reads that table only.

Storage is the bytes of patient files the database records: stored instances, reports and
uploads still in flight. It does not list the object store (on S3 that is one request per
1,000 objects of every institution).
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from tenants.models import Institution, InstitutionUsage
from tenants.schema import current_schema_name
from tenants.sweeps import institutions_sweep

# Table names of the intake, imaging and accounts apps (read without importing those apps).
# Uploads whose bytes are no longer (or not yet) their own are not counted:
# DONE uploads' bytes now belong to their instances and reports; EXPIRED ones were deleted.
_MEASURE_SQL = """
SELECT
    (SELECT count(*) FROM intake_case),
    GREATEST((SELECT max(updated) FROM intake_case), (SELECT max(last_login) FROM accounts_user)),
    (SELECT coalesce(sum(size), 0) FROM imaging_instance)
    + (SELECT coalesce(sum(size), 0) FROM imaging_report)
    + (SELECT coalesce(sum("offset"), 0) FROM imaging_upload WHERE status NOT IN ('done', 'expired'))
"""


def institution_usage_measure() -> None:
    """Measure the current schema's institution and store its figures. Idempotent."""
    institution = Institution.objects.get(schema_name=current_schema_name())
    with connection.cursor() as cursor:
        cursor.execute(_MEASURE_SQL)
        cases, active, stored = cursor.fetchone()
    InstitutionUsage.objects.update_or_create(
        institution=institution,
        defaults={
            "case_count": cases,
            "last_activity": active,
            "storage_bytes": stored,
            "measured": timezone.now(),
        },
    )


def institution_usage_refresh(*, after: str = "", batch: int | None = None) -> str | None:
    """Measure the next batch of institutions after ``after``; return where to go on from, or
    None when every institution has been measured."""
    return institutions_sweep(after=after, work=institution_usage_measure, batch=batch)


def institution_usage_refresh_all() -> int:
    """Measure every institution now, batch after batch (tests and the demo seed)."""
    after: str | None = ""
    batches = 0
    while after is not None:
        after = institution_usage_refresh(after=after)
        batches += 1
    return batches
