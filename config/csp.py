"""Content-Security-Policy with a fresh nonce per response, on every page.

Scripts run only from our own origin (bundled, no CDN) or, for the few inline ones, with this
response's nonce (``{{ csp_nonce }}`` in templates); inline event handlers (``onclick=``) and
``javascript:`` URLs never run. ``frame-ancestors`` is ``'none'`` unless
``branding.middleware`` allowed an institution's websites on an embeddable page (it runs first
on the way out and adds its own directive).

Styles allow ``'unsafe-inline'``: the brand's colours are CSS variables in a ``<style>`` block and
the viewer sets element styles; style injection cannot run code.
``'wasm-unsafe-eval'`` lets the viewer's WebAssembly image decoders compile (not ``eval``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "font-src 'self' data:; "
    "connect-src 'self'; "
    "worker-src 'self' blob:; "
    "object-src 'none'; "
    "base-uri 'self'"
)


def csp_nonce(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: the nonce inline scripts must carry."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        existing = response.get("Content-Security-Policy", "")
        if "default-src" in existing:
            # A view that wrote its own whole policy (a report served sandboxed for pdf.js) is
            # stricter than ours; in one header the first of two same directives wins, so
            # prepending ours would loosen it. Only framing is added if the view said nothing.
            if "frame-ancestors" not in existing:
                response["Content-Security-Policy"] = f"{existing}; frame-ancestors 'none'"
            return response
        policy = POLICY.format(nonce=nonce)
        if "frame-ancestors" in existing:
            policy = f"{policy}; {existing}"
        else:
            policy = f"{policy}; frame-ancestors 'none'" + (f"; {existing}" if existing else "")
        response["Content-Security-Policy"] = policy
        return response
