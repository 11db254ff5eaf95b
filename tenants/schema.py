"""Typed access to the connection's tenant schema (django-tenants adds these attributes to
the database wrapper at run time, which type checkers cannot see)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection

if TYPE_CHECKING:
    from tenants.models import Institution

_tenant_connection: Any = connection


def current_schema_name() -> str:
    return str(_tenant_connection.schema_name)


def activate_institution(institution: Institution) -> None:
    """Route this thread's queries to ``institution``'s schema (public stays on the path)."""
    _tenant_connection.set_tenant(institution)


def activate_public() -> None:
    _tenant_connection.set_schema_to_public()
