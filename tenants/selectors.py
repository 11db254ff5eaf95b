"""Reads about institutions and their addresses (public schema)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django_tenants.utils import get_public_schema_name

from tenants.models import CustomDomain, Domain, Institution
from tenants.services import host_url, platform_url


def institution_schemas_live(
    *, after: str = "", limit: int | None = None, among: Iterable[str] | None = None
) -> list[str]:
    """The schema of every *live* institution, in name order: what every sweep across
    institutions (beat's periodic tasks), report and ``migrate`` visits, and nothing else.

    Live means the institution has gone live (its status is not ``draft``) and its schema
    exists. A draft has a row but no schema until it goes live; a draft being provisioned (or
    whose go-live was killed half-way) has a schema that is not finished yet and may be dropped
    and made again by the onboarding recovery (institutions.recovery): work queued into either
    would fail or be lost. ``after``/``limit`` page through them (sweeps in batches); ``among``
    keeps only those of the given schema names.
    """
    sql = (
        "SELECT i.schema_name FROM tenants_institution i "
        "JOIN pg_namespace n ON n.nspname = i.schema_name "
        "WHERE i.status <> %s AND i.schema_name <> %s AND i.schema_name > %s"
    )
    params: list[Any] = [Institution.Status.DRAFT.value, get_public_schema_name(), after]
    if among is not None:
        sql += " AND i.schema_name = ANY(%s)"
        params.append(list(among))
    sql += " ORDER BY i.schema_name"
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def institution_primary_domain(*, institution: Institution) -> str | None:
    domain = Domain.objects.filter(tenant=institution, is_primary=True).first()
    return domain.domain if domain else None


def institution_primary_url(*, institution: Institution) -> str:
    """The platform subdomain's URL (always reachable, also in development)."""
    return platform_url(slug=institution.slug)


def institution_portal_url(*, institution: Institution) -> str:
    """Where patients should go: the institution's verified own domain if it has one."""
    own = (
        CustomDomain.objects.filter(institution=institution, verified__isnull=False)
        .order_by("-verified")
        .values_list("domain", flat=True)
        .first()
    )
    return host_url(host=own) if own else institution_primary_url(institution=institution)


def tls_host_is_ours(*, host: str) -> bool:
    """Whether the reverse proxy may get a certificate for ``host``: only hosts we route
    (platform subdomains of live institutions, verified custom domains, the platform)."""
    return Domain.objects.filter(domain=host.strip().lower().rstrip(".")).exists()
