"""Reads about institutions and their addresses (public schema)."""

from __future__ import annotations

from django.db import connection

from tenants.models import CustomDomain, Domain, Institution
from tenants.services import host_url, platform_url


def institution_schemas_live() -> list[str]:
    """The schema of every institution that has one, in name order: what a sweep across
    institutions (beat's periodic tasks) must visit. An institution still in its sign-up wizard
    (a draft) has a row but no schema until it goes live, so a task queued into it would fail."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        existing = {row[0] for row in cursor.fetchall()}
    schemas = Institution.objects.exclude(schema_name="public").order_by("schema_name")
    return [schema for schema in schemas.values_list("schema_name", flat=True) if schema in existing]


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
