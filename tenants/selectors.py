"""Reads about institutions and their addresses (public schema)."""

from __future__ import annotations

from tenants.models import CustomDomain, Domain, Institution
from tenants.services import host_url, platform_url


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
