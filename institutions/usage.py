"""Usage snapshots for the operator console (storage is slow to measure on S3, so it is
measured by a periodic task, not on every page view)."""

from __future__ import annotations

from django.utils import timezone

from institutions.selectors import _live_schema_figures
from storage.tenant import tenant_storage
from tenants.models import Institution, InstitutionUsage
from tenants.selectors import institution_schemas_live


def institution_usage_refresh() -> int:
    """Measure storage, cases and last activity of every live institution. Idempotent."""
    existing = set(institution_schemas_live())
    institutions = [i for i in Institution.objects.exclude(schema_name="public") if i.schema_name in existing]
    figures = _live_schema_figures([i.schema_name for i in institutions])
    now = timezone.now()
    for institution in institutions:
        cases, active = figures.get(institution.schema_name, (0, None))
        InstitutionUsage.objects.update_or_create(
            institution=institution,
            defaults={
                "case_count": cases,
                "last_activity": active,
                "storage_bytes": tenant_storage(institution.schema_name).total_size(""),
                "measured": now,
            },
        )
    return len(institutions)
