"""Creating institutions and changing their status (public schema)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from branding.models import Brand
from tenants.models import Domain, Institution


def platform_host(*, slug: str | None = None) -> str:
    """``<slug>.<platform domain>`` for an institution, or the platform domain itself."""
    return f"{slug}.{settings.PLATFORM_DOMAIN}" if slug else settings.PLATFORM_DOMAIN


def platform_url(*, slug: str | None = None) -> str:
    port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
    return f"{settings.PLATFORM_SCHEME}://{platform_host(slug=slug)}{port}/"


def public_tenant_ensure() -> Institution:
    """The public schema's row and the platform's domain (idempotent)."""
    public, _ = Institution.objects.get_or_create(
        schema_name="public",
        defaults={"name": "SecondRead platform", "slug": "platform", "status": Institution.Status.ACTIVE},
    )
    Domain.objects.get_or_create(domain=platform_host(), defaults={"tenant": public, "is_primary": True})
    return public


def institution_create(
    *,
    name: str,
    slug: str,
    status: str = Institution.Status.ACTIVE,
    primary_colour: str = "#1f4e79",
    accent_colour: str = "#c75b12",
) -> Institution:
    """Create an institution, its schema (migrated), its platform subdomain and its brand.

    The schema is created by django-tenants when the row is first saved; if anything after
    that fails, the schema is dropped again so no orphan is left behind.
    """
    institution = Institution(schema_name=slug.replace("-", "_"), name=name, slug=slug, status=status)
    institution.save(verbosity=0)  # creates and migrates the schema
    try:
        with transaction.atomic():
            Domain.objects.create(domain=platform_host(slug=slug), tenant=institution, is_primary=True)
            Brand.objects.create(
                institution=institution, primary_colour=primary_colour, accent_colour=accent_colour
            )
    except Exception:
        institution.auto_drop_schema = True
        institution.delete(force_drop=True)
        raise
    return institution


def institution_set_status(*, institution: Institution, status: str) -> Institution:
    institution.status = status
    institution.status_changed = timezone.now()
    institution.save(update_fields=["status", "status_changed"])
    return institution
