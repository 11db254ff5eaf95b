"""Tenancy behind a real PgBouncer in transaction mode: a pooled server connection never
serves one institution with another's schema.

With django-tenants' way (``SET search_path`` once per client connection), a transaction-mode
pooler hands the next transaction of client A a server connection that client B just set to
B's schema; the first test shows that hazard is real on this PgBouncer, the others that our
backend (config.database: the schema inside every statement) is immune to it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections
from django.test import Client
from django_tenants.postgresql_backend.base import DatabaseWrapper as DjangoTenantsWrapper
from django_tenants.utils import schema_context

from accounts.models import User
from config.database.base import DatabaseWrapper
from conftest import host_of
from tenants.models import Institution
from tests.pgbouncer import PgBouncer, pgbouncer_running

pytestmark = pytest.mark.django_db

REQUESTS = 10_000
THREADS = 16
PATIENTS = {"neuro": "patient@neuro.example.com", "cancer": "patient@cancer.example.com"}


@pytest.fixture(scope="module")
def pgbouncer(django_db_setup: None) -> Iterator[PgBouncer]:
    yield from pgbouncer_running(server_connections=2)


def _current_schema(wrapper: Any) -> str:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return str(cursor.fetchone()[0])


def _interleaved(wrapper_class: type, pgbouncer: PgBouncer) -> list[tuple[str, str]]:
    """Two clients of one PgBouncer, one per institution, taking turns; what schema each of
    their statements ran in."""
    first = wrapper_class(pgbouncer.settings_dict(), "pooled-neuro")
    second = wrapper_class(pgbouncer.settings_dict(), "pooled-cancer")
    first.set_schema("neuro")
    second.set_schema("cancer")
    seen = []
    try:
        for _ in range(20):
            seen.append(("neuro", _current_schema(first)))
            seen.append(("cancer", _current_schema(second)))
    finally:
        first.close()
        second.close()
    return seen


def test_the_hazard_is_real_with_a_search_path_set_per_connection(pgbouncer: PgBouncer) -> None:
    seen = _interleaved(DjangoTenantsWrapper, pgbouncer)
    assert any(wanted != got for wanted, got in seen), "PgBouncer did not share server connections"


def test_it_runs_each_statement_in_its_own_institutions_schema(pgbouncer: PgBouncer) -> None:
    seen = _interleaved(DatabaseWrapper, pgbouncer)
    assert all(wanted == got for wanted, got in seen), seen


def test_it_keeps_the_schema_inside_transactions_and_after_a_savepoint_rollback(pgbouncer: PgBouncer) -> None:
    first = DatabaseWrapper(pgbouncer.settings_dict(), "pooled-a")
    second = DatabaseWrapper(pgbouncer.settings_dict(), "pooled-b")
    first.set_schema("neuro")
    second.set_schema("cancer")
    try:
        with _atomic(first):
            assert _current_schema(first) == "neuro"
            sid = first.savepoint()
            assert _current_schema(first) == "neuro"
            first.savepoint_rollback(sid)
            assert _current_schema(second) == "cancer"
            assert _current_schema(first) == "neuro"
            # After an error, the rollback to the savepoint still runs (it carries no SET,
            # which the aborted transaction would refuse) and the schema is right again.
            sid = first.savepoint()
            with pytest.raises(DatabaseError), first.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
            first.savepoint_rollback(sid)
            assert _current_schema(first) == "neuro"
        with first.cursor() as cursor:
            cursor.executemany("SELECT %s", [("a",), ("b",)])
        assert _current_schema(first) == "neuro"
    finally:
        first.close()
        second.close()


class _atomic:
    """A transaction on a wrapper that is not in ``connections`` (transaction.atomic needs an alias)."""

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def __enter__(self) -> None:
        self.wrapper.set_autocommit(False)

    def __exit__(self, *exc: object) -> None:
        self.wrapper.commit()
        self.wrapper.set_autocommit(True)


@pytest.fixture
def requests_through_pgbouncer(pgbouncer: PgBouncer) -> Iterator[None]:
    """Connections opened from now on (by new threads) go through PgBouncer."""
    direct = connections.settings["default"]
    connections.settings["default"] = pgbouncer.settings_dict()
    try:
        yield
    finally:
        connections.settings["default"] = direct


@pytest.mark.usefixtures("requests_through_pgbouncer")
def test_two_institutions_requests_interleaved_by_many_threads_never_leak() -> None:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    hosts = {slug: host_of(Institution.objects.get(slug=slug)) for slug in PATIENTS}

    def work(count: int, seed: int) -> None:
        chooser = random.Random(seed)  # noqa: S311 (an order of requests, not a secret)
        clients: dict[str, Client] = {}
        try:
            for slug in PATIENTS:
                client = Client(HTTP_HOST=hosts[slug])
                with schema_context(slug):
                    client.force_login(User.objects.get(email=PATIENTS[slug]))
                clients[slug] = client
            for _ in range(count):
                slug = chooser.choice(("neuro", "cancer"))
                other = "cancer" if slug == "neuro" else "neuro"
                response = clients[slug].get("/cases/")
                body = response.content.decode()
                ok = response.status_code == 200 and PATIENTS[slug] in body and PATIENTS[other] not in body
                with lock:
                    outcomes["ok" if ok else "leak"] += 1
                    if not ok and len(failures) < 5:
                        failures.append(f"{slug}: {response.status_code}")
        except BaseException as error:
            with lock:
                failures.append(repr(error))
        finally:
            for slug, client in clients.items():
                with schema_context(slug):
                    client.logout()
            connection.close()

    threads = [threading.Thread(target=work, args=(REQUESTS // THREADS, seed)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert outcomes == {"ok": REQUESTS}
