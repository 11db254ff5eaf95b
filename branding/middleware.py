"""Who may put an institution's pages in a frame.

Django's XFrameOptionsMiddleware answers DENY everywhere. An institution that lists the
websites allowed to embed its patient portal gets, on its patient-facing pages only,
``Content-Security-Policy: frame-ancestors 'self' <those origins>`` instead (and no
X-Frame-Options, which cannot name origins). Staff pages and settings are never framed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from branding.selectors import brand_for_institution
from tenants.access import request_institution

NEVER_FRAMED = ("/workspace/", "/settings/", "/accounts/2fa/", "/operators/", "/invitations/")


def frame_ancestors_policy(request: HttpRequest) -> str | None:
    """The frame-ancestors source list for this request, or None to keep DENY."""
    institution = request_institution(request)
    if institution is None or request.path.startswith(NEVER_FRAMED):
        return None
    brand = brand_for_institution(institution=institution)
    origins = brand.embed_origin_list if brand else []
    return " ".join(["'self'", *origins]) if origins else None


class FrameAncestorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        sources = frame_ancestors_policy(request)
        if sources is None:
            return response
        if "X-Frame-Options" in response:
            del response["X-Frame-Options"]
        existing = response.get("Content-Security-Policy", "")
        if "frame-ancestors" not in existing:
            directive = f"frame-ancestors {sources}"
            response["Content-Security-Policy"] = f"{existing}; {directive}" if existing else directive
        return response
