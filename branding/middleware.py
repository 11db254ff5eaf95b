"""Who may put an institution's pages in a frame.

Django's XFrameOptionsMiddleware answers DENY everywhere. An institution that lists the
websites allowed to embed its patient portal gets, on the portal pages meant for embedding
only (an allow-list: the embed page, the portal home, the patient's request steps, signing in
and up), ``Content-Security-Policy: frame-ancestors 'self' <those origins>`` instead (and no
X-Frame-Options, which cannot name origins). Everything else (payments, account management,
second factor, staff pages, settings, files) is never framed: a page added later is not
frameable until it is listed here.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from branding.selectors import brand_for_institution
from tenants.access import request_institution

EMBEDDABLE_PATHS = frozenset(
    {"/", "/embed/", "/terms/", "/accounts/login/", "/accounts/signup/", "/accounts/confirm-email/"}
)
EMBEDDABLE_PREFIXES = ("/cases/",)


def is_embeddable(path: str) -> bool:
    return path in EMBEDDABLE_PATHS or path.startswith(EMBEDDABLE_PREFIXES)


def frame_ancestors_policy(request: HttpRequest) -> str | None:
    """The frame-ancestors source list for this request, or None to keep DENY."""
    institution = request_institution(request)
    if institution is None or not is_embeddable(request.path):
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
