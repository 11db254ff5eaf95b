"""The institution's logo, served on its own domain (public: a logo is not patient data)."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest

from branding.selectors import brand_for_institution
from storage.tenant import tenant_storage
from tenants.schema import current_schema_name


def logo(request: HttpRequest) -> FileResponse:
    institution = getattr(request, "tenant", None)
    brand = brand_for_institution(institution=institution) if institution is not None else None
    if brand is None or not brand.logo_key:
        raise Http404
    files = tenant_storage(current_schema_name())
    response = FileResponse(files.open(brand.logo_key), content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"
    return response
