"""The platform's addresses, and its own row (public schema)."""

from __future__ import annotations

from django.conf import settings

from tenants.models import Domain, Institution


def platform_host(*, slug: str | None = None) -> str:
    """``<slug>.<platform domain>`` for an institution, or the platform domain itself."""
    return f"{slug}.{settings.PLATFORM_DOMAIN}" if slug else settings.PLATFORM_DOMAIN


def platform_url(*, slug: str | None = None) -> str:
    port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
    return f"{settings.PLATFORM_SCHEME}://{platform_host(slug=slug)}{port}/"


def host_url(*, host: str) -> str:
    """The root URL of any host we serve (a platform subdomain or a verified custom domain)."""
    port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
    return f"{settings.PLATFORM_SCHEME}://{host}{port}/"


def public_tenant_ensure() -> Institution:
    """The public schema's row and the platform's domain (idempotent)."""
    public, _ = Institution.objects.get_or_create(
        schema_name="public",
        defaults={"name": "SecondRead platform", "slug": "platform", "status": Institution.Status.ACTIVE},
    )
    Domain.objects.get_or_create(domain=platform_host(), defaults={"tenant": public, "is_primary": True})
    return public
