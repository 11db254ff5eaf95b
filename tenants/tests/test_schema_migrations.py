"""Migrating institution schemas at deploy: drafts skipped, current schemas left alone, the
others migrated in parallel, each schema's state recorded, a failure resumed by running again.

``migrate`` runs as a deploy runs it: a separate process on the (committed) test database.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from tenants.models import Institution, SchemaMigrationState
from tests.live import BASE_DIR, child_env

# Slow: it makes schemas and migrates them in worker processes (a minute on a loaded machine).
pytestmark = [pytest.mark.django_db, pytest.mark.slow]

FRESH = "inst_migratetest_fresh"
BROKEN = "inst_migratetest_broken"
DRAFT = "inst_migratetest_draft"
# A draft whose go-live was killed half-way: its schema exists but is not finished (here: it
# would fail to migrate). Not live, so migrate leaves it to the onboarding recovery.
HALF = "inst_migratetest_half"


def _committed(work: Callable[[Any], object]) -> None:
    """Run SQL on a connection of its own, so it is committed for the migrate process."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                work(cursor)
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def _migrate() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate_schemas", "--tenant", "--noinput"],
        cwd=BASE_DIR,
        env=child_env(TENANT_MIGRATION_PROCESSES="2"),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _states() -> dict[str, tuple[str, str]]:
    result: dict[str, tuple[str, str]] = {}

    def read(cursor: Any) -> None:
        cursor.execute("SELECT schema_name, status, error FROM tenants_schemamigrationstate")
        result.update({schema: (status, error) for schema, status, error in cursor.fetchall()})

    _committed(read)
    return result


@pytest.fixture
def institutions_to_migrate() -> Iterator[None]:
    """An institution without a schema, a draft with a half-provisioned one, a new empty
    schema, and one whose migration will fail (a table in the way), each an Institution row
    like any other."""

    def create(cursor: Any) -> None:
        for schema, status in ((FRESH, "active"), (BROKEN, "active"), (DRAFT, "active"), (HALF, "draft")):
            cursor.execute(
                "INSERT INTO tenants_institution (schema_name, name, slug, status, created) "
                "VALUES (%s, %s, %s, %s, now())",
                [schema, schema, schema.replace("_", "-"), status],
            )
        cursor.execute(f'CREATE SCHEMA "{FRESH}"')
        cursor.execute(f'CREATE SCHEMA "{BROKEN}"')
        cursor.execute(f'CREATE TABLE "{BROKEN}".django_content_type (id int)')
        cursor.execute(f'CREATE SCHEMA "{HALF}"')
        cursor.execute(f'CREATE TABLE "{HALF}".django_content_type (id int)')

    def remove(cursor: Any) -> None:
        for schema in (FRESH, BROKEN, HALF):
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        cursor.execute(
            "DELETE FROM tenants_institution WHERE schema_name IN (%s, %s, %s, %s)",
            [FRESH, BROKEN, DRAFT, HALF],
        )
        cursor.execute(
            "DELETE FROM tenants_schemamigrationstate WHERE schema_name IN (%s, %s)", [FRESH, BROKEN]
        )

    _committed(create)
    try:
        yield
    finally:
        _committed(remove)


@pytest.mark.usefixtures("institutions_to_migrate")
def test_it_migrates_in_parallel_records_each_schema_and_resumes_after_a_failure() -> None:
    first = _migrate()
    # One schema failing does not stop the others, and the command fails naming it.
    assert first.returncode != 0
    assert BROKEN in first.stderr and FRESH not in first.stderr
    assert "2 institution(s) not live (drafts, with or without a schema): skipped" in first.stdout
    states = _states()
    assert states[FRESH] == ("current", "")
    assert states[BROKEN][0] == "failed" and "django_content_type" in states[BROKEN][1]
    assert states["neuro"] == ("current", "") and states["cancer"] == ("current", "")
    assert DRAFT not in states and HALF not in states

    _committed(lambda cursor: cursor.execute(f'DROP TABLE "{BROKEN}".django_content_type'))
    second = _migrate()
    assert second.returncode == 0, second.stderr  # the drafts still there
    assert "current, 1 to migrate" in second.stdout  # only the failed one is done again
    assert _states()[BROKEN] == ("current", "")

    third = _migrate()
    assert third.returncode == 0, third.stderr
    assert "0 to migrate" in third.stdout
    assert "Applying" not in third.stdout

    report = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migration_report", "--check"],
        cwd=BASE_DIR,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert "2 not live (drafts, skipped by migrate)" in report.stdout
    assert "latest: " in report.stdout and FRESH in report.stdout


def test_it_reports_failed_schemas_with_their_error(neuro: Institution) -> None:
    from tenants.schema_migration_report import migration_report

    SchemaMigrationState.objects.update_or_create(
        schema_name="neuro", defaults={"status": "failed", "error": "ProgrammingError: boom"}
    )
    report = migration_report()
    assert "failed: 1 (neuro)" in report
    assert "neuro: ProgrammingError: boom" in report


def test_migrating_a_schema_never_lists_every_schemas_tables(neuro: Institution) -> None:
    """Django's migration recorder lists every table visible on the search_path to learn whether
    its own exists: a scan of all of pg_class, which holds every institution's tables (0.5 s
    a time at 1,000 institutions, three times per schema: migrations grew as N²)."""
    from django.core.management.commands.migrate import Command as Migrate
    from django.test.utils import CaptureQueriesContext

    from tenants.schema_migrations import _migrate_one

    options = vars(Migrate().create_parser("manage.py", "migrate").parse_args(["--noinput", "-v", "0"]))
    with CaptureQueriesContext(connection) as queries:
        assert _migrate_one((), options, "neuro") is None
    assert queries.captured_queries, "nothing was asked of the database"
    listing = [q["sql"] for q in queries.captured_queries if "pg_table_is_visible" in q["sql"]]
    assert listing == []
