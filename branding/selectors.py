from __future__ import annotations

from branding.models import Brand
from tenants.models import Institution


def brand_for_institution(*, institution: Institution) -> Brand | None:
    """The institution's brand, cached on the instance for the request's lifetime."""
    cached: Brand | None = getattr(institution, "_brand_cache", None)
    if cached is None:
        if Institution.brand.is_cached(institution):  # fetched with the request's domain
            cached = getattr(institution, "brand", None)
        else:
            cached = Brand.objects.filter(institution_id=institution.pk).first()
        institution._brand_cache = cached
    return cached
