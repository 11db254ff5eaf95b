"""SecondRead's PostgreSQL backend: django-tenants' backend, with the schema set inside every
query instead of once per connection, so it is safe behind PgBouncer in transaction mode.

django-tenants sets ``search_path`` with a session-level ``SET`` when a connection first
serves a schema (and, with ``TENANT_LIMIT_SET_CALLS``, not again). Behind a pooler in
transaction mode a client connection is not a server connection: each transaction may run on
another server connection, one that last ran another institution's ``SET``. Then a query of
institution A reads institution B's tables.

Here every statement is sent as ``SET LOCAL search_path = "<schema>", public; <statement>`` in
ONE simple-protocol message (Django's default client-side-binding cursor). PostgreSQL runs a
multi-statement message as one implicit transaction, and PgBouncer keeps one server connection
for it, so the schema and the statement can never be split, whatever ran on that server
connection before. ``SET LOCAL`` ends with the transaction, so nothing is left behind for the
next client either. It costs no extra round trip (the old way cost one per schema change).

Also here: a connection that has served many schemas is closed at the end of its request or
task (``DB_CONN_MAX_SCHEMAS``). PostgreSQL caches the catalogue of every table a backend has
touched and never frees it, so one long-lived connection that visits a thousand institutions
grows to over half a gigabyte; a fresh one starts small.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql.base import Cursor as DjangoCursor
from django_tenants.postgresql_backend import base as tenants_base
from django_tenants.utils import quote_schema_name
from psycopg import pq

# Statements PostgreSQL refuses inside a transaction block (an implicit one included). They
# get a session-level SET first, in a separate round trip: they only come from migrations and
# database creation, which run on a direct connection (docs/scaling.md), never via a pooler.
_OUTSIDE_TRANSACTION = re.compile(
    r"^\s*(CREATE\s+DATABASE|DROP\s+DATABASE|VACUUM|ALTER\s+SYSTEM|"
    r"(CREATE|DROP)\s+INDEX\s+CONCURRENTLY|REINDEX\s+.*CONCURRENTLY|CREATE\s+TABLESPACE|DROP\s+TABLESPACE)",
    re.IGNORECASE | re.DOTALL,
)

# Transaction control reads no table, and must run even in an aborted transaction (where a SET
# would fail and take the ROLLBACK TO SAVEPOINT with it): sent as it is.
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(ROLLBACK|RELEASE|SAVEPOINT|COMMIT|BEGIN|START\s+TRANSACTION|END)\b", re.IGNORECASE
)


# Django's cursor class is untyped for checkers (psycopg's methods come through a mixin).
_CursorBase: Any = DjangoCursor


class SchemaCursor(_CursorBase):
    """A client-side-binding cursor that prefixes each statement with its schema."""

    sr_wrapper: DatabaseWrapper | None = None

    def _search_path_sql(self) -> str | None:
        wrapper = self.sr_wrapper
        if wrapper is None or wrapper.sr_setting_aside:
            return None
        schemas = wrapper._get_cursor_search_paths()
        wrapper.sr_schemas_served.add(schemas[0])
        return "SET LOCAL search_path = " + ",".join(quote_schema_name(s) for s in schemas)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        search_path = self._search_path_sql()
        if search_path is None or not isinstance(query, str) or _TRANSACTION_CONTROL.match(query):
            return super().execute(query, params, **kwargs)
        if _OUTSIDE_TRANSACTION.match(query):
            super().execute(search_path.replace("SET LOCAL", "SET", 1))
            return super().execute(query, params, **kwargs)
        # With parameters, psycopg reads % as a placeholder marker: the prefix has none but a
        # schema name could (quote_schema_name does not escape it).
        prefix = search_path.replace("%", "%%") if params is not None else search_path
        super().execute(f"{prefix}; {query}", params, **kwargs)
        # The SET's (empty) result comes first; the caller wants the statement's.
        self.nextset()
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        # executemany pipelines its statements (extended protocol: one statement each), so the
        # schema is set in an explicit transaction around them instead.
        search_path = self._search_path_sql()
        if search_path is None:
            return super().executemany(query, params_seq, **kwargs)
        connection = self.connection
        if connection.info.transaction_status == pq.TransactionStatus.IDLE and connection.autocommit:
            with connection.transaction():
                super().execute(search_path)
                return super().executemany(query, params_seq, **kwargs)
        super().execute(search_path)
        return super().executemany(query, params_seq, **kwargs)


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Set while django-tenants or Django run their own internal statements on a cursor
        # (none today); normal use never sets it.
        self.sr_setting_aside = False
        self.sr_schemas_served: set[str] = set()
        super().__init__(*args, **kwargs)
        if self.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
            raise ImproperlyConfigured(
                "server_side_binding cannot carry the schema in each statement; leave it off."
            )

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params["cursor_factory"] = SchemaCursor
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        if name:
            raise ImproperlyConfigured(
                "Server-side cursors cannot carry the schema in each statement and do not work "
                "behind a transaction-mode pooler: DISABLE_SERVER_SIDE_CURSORS must be True."
            )
        cursor = super().create_cursor()
        cursor.sr_wrapper = self
        return cursor

    def _handle_search_path(self, cursor: Any = None) -> None:
        # Nothing to do per connection: every statement carries its schema (SchemaCursor).
        if not self.schema_name:
            raise ImproperlyConfigured("Database schema not set.")

    def close(self) -> None:
        self.sr_schemas_served = set()
        super().close()

    def close_if_unusable_or_obsolete(self) -> None:
        # Called at the start and end of every request and task (Django, Celery's fixup).
        super().close_if_unusable_or_obsolete()
        limit = getattr(settings, "DB_CONN_MAX_SCHEMAS", 0)
        if (
            self.connection is not None
            and limit
            and len(self.sr_schemas_served) >= limit
            and not self.in_atomic_block
        ):
            self.close()
