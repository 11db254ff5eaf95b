"""Our PostgreSQL backend: each statement carries its schema, and a connection that has served
many institutions' schemas is closed at the end of its request or task (bounded backend memory)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from tenants.schema import activate_public, activate_schema
from tests.live import committed

pytestmark = pytest.mark.django_db


def _serve(schemas: list[str]) -> bool:
    """Query each schema in turn, end the "request"; return whether the connection is still open."""
    for schema in schemas:
        activate_schema(schema)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts_user")
    activate_public()
    connection.close_if_unusable_or_obsolete()
    return connection.connection is not None


@override_settings(DB_CONN_MAX_SCHEMAS=2)
def test_it_closes_a_connection_that_served_too_many_schemas() -> None:
    assert committed(lambda: _serve(["neuro", "neuro"])) is True
    assert committed(lambda: _serve(["neuro", "cancer"])) is False


@override_settings(DB_CONN_MAX_SCHEMAS=0)
def test_it_keeps_connections_when_the_limit_is_off() -> None:
    assert committed(lambda: _serve(["neuro", "cancer"])) is True


def test_each_statement_carries_its_schema_in_the_same_message() -> None:
    activate_schema("neuro")
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        assert cursor.fetchone() == ("neuro",)
        cursor.execute("SELECT %s::text", ["100%"])  # a parameter with a % sign
        assert cursor.fetchone() == ("100%",)
    # No separate SET statement: one query each.
    assert len(queries.captured_queries) == 2
    activate_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        assert cursor.fetchone() == ("public",)
