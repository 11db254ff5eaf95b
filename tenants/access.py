"""The institution a request is for (None on the platform's own domain)."""

from __future__ import annotations

from django.http import HttpRequest

from tenants.models import Institution


def request_institution(request: HttpRequest) -> Institution | None:
    institution = getattr(request, "tenant", None)
    return institution if isinstance(institution, Institution) and not institution.is_public else None
