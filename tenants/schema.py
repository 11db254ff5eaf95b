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


def current_institution() -> Institution:
    """The institution whose schema the connection is on (a request's, a task's, a webhook's).

    django-tenants keeps the tenant it switched to on the connection; only when the connection
    was switched by schema name alone (``schema_context``) is it fetched.
    """
    from tenants.models import Institution

    tenant = getattr(_tenant_connection, "tenant", None)
    if isinstance(tenant, Institution) and tenant.schema_name == current_schema_name():
        return tenant
    return Institution.objects.get(schema_name=current_schema_name())


def activate_institution(institution: Institution) -> None:
    """Route this thread's queries to ``institution``'s schema (public stays on the path)."""
    _tenant_connection.set_tenant(institution)


def activate_public() -> None:
    _tenant_connection.set_schema_to_public()


def activate_schema(schema_name: str, *, include_public: bool = True) -> None:
    """Route this thread's queries to ``schema_name`` (by name, e.g. the template's)."""
    _tenant_connection.set_schema(schema_name, include_public=include_public)
