"""Migrating a thousand institution schemas: check all at once, migrate in parallel, record.

django-tenants' standard executor runs Django's ``migrate`` command in every schema, one after
the other: at 1,000 institutions a deploy with nothing to migrate took 534 s, and a real
migration 458 s with no record of where it stopped. This executor (``GET_EXECUTOR_FUNCTION``
in settings, so ``migrate`` and ``migrate_schemas`` use it):

1. skips institutions that are not live (drafts: no schema, or one half-provisioned) instead
   of failing (:func:`schemas_to_migrate`);
2. reads the applied migrations of every schema in a few queries (``CHECK_BATCH`` schemas per
   ``UNION ALL``) and compares them with the migrations on disk: schemas already current are
   not touched (a no-op deploy takes seconds);
3. migrates the others in parallel worker processes (``TENANT_MIGRATION_PROCESSES``), each
   schema on a fresh connection (catalogue caches stay small), recording each schema's state
   (running / current / failed with the error) in ``tenants.SchemaMigrationState``;
4. goes on past a failing schema and fails the command at the end, naming them; running
   ``migrate`` again resumes with whatever is not current.

Runs on a direct connection to PostgreSQL, not through a transaction-mode pooler (see
docs/scaling.md, which also has the expand/contract rules every migration must follow, since
schemas migrate while the previous release still serves them).
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django_tenants.migration_executors.base import MigrationExecutor, run_migrations

from tenants.schema import activate_public, activate_schema

CHECK_BATCH = 500

# Options of ``migrate`` that ask for something else than "bring every schema up to date": for
# those the executor behaves like django-tenants' standard one (one schema after another).
_SPECIAL_OPTIONS = ("app_label", "migration_name", "fake", "fake_initial", "plan", "prune", "run_syncdb")


def _quote(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


@functools.cache
def migrations_on_disk() -> frozenset[tuple[str, str]]:
    """Every migration of the project: what a current tenant schema has recorded.

    (``migrate`` records every app's migrations in every schema; the router only decides which
    operations run there.) Read once per process: the files do not change under a running one.
    """
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return frozenset(loader.graph.nodes)


def fingerprint(applied: Iterable[tuple[str, str]]) -> str:
    return hashlib.sha256("\n".join(sorted(f"{a}.{n}" for a, n in applied)).encode()).hexdigest()


def versions(applied: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The newest applied migration of each app (names start with their number)."""
    newest: dict[str, str] = {}
    for app, name in applied:
        if name > newest.get(app, ""):
            newest[app] = name
    return newest


def schemas_existing(schemas: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(schemas))
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [wanted])
        found = {row[0] for row in cursor.fetchall()}
    return [schema for schema in wanted if schema in found]


def schemas_to_migrate(schemas: Iterable[str]) -> list[str]:
    """Of ``schemas``, those ``migrate`` may touch: every live institution's
    (:func:`tenants.selectors.institution_schemas_live`) and any existing schema that is no
    institution's (the go-live template). A draft's schema, absent or half-provisioned, is
    skipped: one unfinished sign-up must never fail a deploy, and go-live clones a migrated
    template anyway."""
    from tenants.models import Institution
    from tenants.selectors import institution_schemas_live

    wanted = list(dict.fromkeys(schemas))
    live = set(institution_schemas_live(among=wanted))
    institutions = set(
        Institution.objects.filter(schema_name__in=wanted).values_list("schema_name", flat=True)
    )
    others = set(schemas_existing([schema for schema in wanted if schema not in institutions]))
    return [schema for schema in wanted if schema in live or schema in others]


def applied_migrations(schemas: list[str], *, reconnect: bool = True) -> dict[str, set[tuple[str, str]]]:
    """The migrations recorded in each schema's ``django_migrations``: one query per
    ``CHECK_BATCH`` schemas (a schema without the table counts as having none). ``reconnect``:
    close the connection afterwards (it has touched a table in every schema)."""
    applied: dict[str, set[tuple[str, str]]] = {schema: set() for schema in schemas}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'django_migrations' AND n.nspname = ANY(%s)",
            [schemas],
        )
        with_table = [row[0] for row in cursor.fetchall()]
        for start in range(0, len(with_table), CHECK_BATCH):
            batch = with_table[start : start + CHECK_BATCH]
            sql = " UNION ALL ".join(
                f"SELECT %s, app, name FROM {_quote(schema)}.django_migrations"  # noqa: S608 (quoted names)
                for schema in batch
            )
            cursor.execute(sql, batch)
            for schema, app, name in cursor.fetchall():
                applied[schema].add((app, name))
    if reconnect and not connection.in_atomic_block:
        connection.close()
    return applied


def _state_record(schema: str, **fields: Any) -> None:
    from tenants.models import SchemaMigrationState

    SchemaMigrationState.objects.update_or_create(schema_name=schema, defaults=fields)


def states_record_current(applied: dict[str, set[tuple[str, str]]]) -> None:
    """Record the schemas found current (one bulk upsert)."""
    from tenants.models import SchemaMigrationState

    now = timezone.now()
    SchemaMigrationState.objects.bulk_create(
        [
            SchemaMigrationState(
                schema_name=schema,
                status=SchemaMigrationState.Status.CURRENT,
                fingerprint=fingerprint(done),
                versions=versions(done),
                error="",
                finished=now,
            )
            for schema, done in applied.items()
        ],
        update_conflicts=True,
        unique_fields=["schema_name"],
        update_fields=["status", "fingerprint", "versions", "error", "finished"],
        batch_size=1000,
    )


def _has_table(self: Any) -> bool:
    """``MigrationRecorder.has_table`` asking for its one table: Django lists every table visible
    on the search_path (``pg_table_is_visible`` over all of pg_class, which holds every schema's
    tables: 0.5 s at 1,000 institutions), three times per schema migrated."""
    if self._has_table:
        return True
    with self.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [self.Migration._meta.db_table])
        self._has_table = bool(cursor.fetchone()[0])
    return bool(self._has_table)


@contextmanager
def _recorder_asking_for_its_table() -> Iterator[None]:
    from django.db.migrations.recorder import MigrationRecorder

    listing = MigrationRecorder.has_table
    MigrationRecorder.has_table = _has_table  # type: ignore[method-assign]
    try:
        yield
    finally:
        MigrationRecorder.has_table = listing  # type: ignore[method-assign]


def _migrate_one(args: tuple[Any, ...], options: dict[str, Any], schema: str) -> str | None:
    """Migrate one schema, recording its state; return the error, or None."""
    from django.db.migrations.recorder import MigrationRecorder

    _state_record(schema, status="running", started=timezone.now(), finished=None, error="")
    try:
        # Inside a caller's transaction (institution_create in a test) the migrations join it.
        in_transaction = connection.in_atomic_block
        with _recorder_asking_for_its_table():
            run_migrations(
                args, options, InstitutionMigrationExecutor.codename, schema, allow_atomic=in_transaction
            )
    except Exception as exc:  # recorded and reported: the other schemas go on
        _close_unless_atomic()
        error = f"{type(exc).__name__}: {exc}"[:500]
        _state_record(schema, status="failed", error=error, finished=timezone.now())
        return error
    activate_schema(schema, include_public=False)
    with _recorder_asking_for_its_table():
        done = set(MigrationRecorder(connection).applied_migrations())
    activate_public()
    _close_unless_atomic()
    _state_record(
        schema,
        status="current",
        fingerprint=fingerprint(done),
        versions=versions(done),
        error="",
        finished=timezone.now(),
    )
    return None


def _migrate_many(job: tuple[tuple[Any, ...], dict[str, Any], list[str]]) -> dict[str, str]:
    args, options, schemas = job
    failures = {}
    for schema in schemas:
        error = _migrate_one(args, options, schema)
        if error is not None:
            failures[schema] = error
    _close_unless_atomic()
    return failures


def _close_unless_atomic() -> None:
    """Drop the connections (a backend that served a schema keeps its catalogue caches), except
    inside a caller's transaction (creating one institution's schema in a test or a service),
    which closing would break."""
    if not connection.in_atomic_block:
        connections.close_all()


class InstitutionMigrationExecutor(MigrationExecutor):
    codename = "institutions"

    def _say(self, message: str) -> None:
        if int(self.options.get("verbosity", 1)) >= 1:
            sys.stdout.write(f"[migrate] {message}\n")
            sys.stdout.flush()

    def run_migrations(self, tenants: Iterable[str] | None = None) -> None:
        schemas = list(tenants or [])
        if self.PUBLIC_SCHEMA_NAME in schemas:
            run_migrations(self.args, self.options, self.codename, self.PUBLIC_SCHEMA_NAME)
            schemas.remove(self.PUBLIC_SCHEMA_NAME)
        if not schemas:
            return
        started = time.monotonic()
        existing = schemas_to_migrate(schemas)
        if len(existing) < len(schemas):
            self._say(
                f"{len(schemas) - len(existing)} institution(s) not live (drafts, with or without "
                "a schema): skipped"
            )
        if any(self.options.get(name) for name in _SPECIAL_OPTIONS) or self.args:
            for schema in existing:
                run_migrations(self.args, self.options, self.codename, schema, allow_atomic=False)
            from tenants.models import SchemaMigrationState

            # Their state is whatever that made it: checked afresh by the next migrate.
            SchemaMigrationState.objects.filter(schema_name__in=existing).delete()
            return
        wanted = migrations_on_disk()
        applied = applied_migrations(existing)
        current = {schema: done for schema, done in applied.items() if wanted <= done}
        pending = [schema for schema in existing if schema not in current]
        states_record_current(current)
        self._say(
            f"{len(current)} schema(s) current, {len(pending)} to migrate "
            f"(checked in {time.monotonic() - started:.1f}s)"
        )
        if not pending:
            return
        if self.options.get("check_unapplied"):
            sys.exit(1)
        failures = self._migrate_in_parallel(pending)
        self._say(f"migrated {len(pending) - len(failures)} schema(s) in {time.monotonic() - started:.1f}s")
        if failures:
            listed = "; ".join(f"{schema}: {error}" for schema, error in sorted(failures.items())[:20])
            raise CommandError(
                f"{len(failures)} schema(s) failed to migrate (recorded in SchemaMigrationState; "
                f"run migrate again to resume): {listed}"
            )

    def _migrate_in_parallel(self, pending: list[str]) -> dict[str, str]:
        processes = max(1, min(getattr(settings, "TENANT_MIGRATION_PROCESSES", 4), len(pending)))
        options = {**self.options, "skip_checks": True}
        if processes == 1 or not hasattr(multiprocessing, "get_context"):
            return _migrate_many((self.args, options, pending))
        # Children inherit the loaded apps and settings (fork) but must not share a connection.
        connections.close_all()
        # Schemas dealt round-robin so each process gets a share of any slow ones.
        jobs = [(self.args, options, pending[index::processes]) for index in range(processes)]
        failures: dict[str, str] = {}
        with multiprocessing.get_context("fork").Pool(processes=processes) as pool:
            for result in pool.imap_unordered(_migrate_many, jobs):
                failures.update(result)
        return failures


def get_executor(codename: str | None = None) -> type[MigrationExecutor]:
    """``GET_EXECUTOR_FUNCTION``: this executor whatever the codename."""
    return InstitutionMigrationExecutor
