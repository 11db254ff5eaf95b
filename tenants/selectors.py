from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Domain, Institution


def institution_list_for_operators() -> QuerySet[Institution]:
    """Every institution but the public one, with its domains; no patient data."""
    return Institution.objects.exclude(schema_name="public").prefetch_related("domains").order_by("name")


def institution_primary_domain(*, institution: Institution) -> str | None:
    domain = Domain.objects.filter(tenant=institution, is_primary=True).first()
    return domain.domain if domain else None
