"""On an institution's domain: its logo, its legal texts, the website embed (script and
embeddable portal page) and the administrator's settings pages."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from branding.colours import readable_text_on
from branding.models import Brand
from branding.selectors import brand_for_institution
from branding.services import brand_favicon_key
from storage.tenant import tenant_storage
from tenants.access import request_institution
from tenants.models import Institution
from tenants.schema import current_schema_name

EMBED_PROBE_COOKIE = "sr_embed_probe"
SAVED = "Saved."


def _brand(institution: Institution) -> Brand:
    brand = brand_for_institution(institution=institution)
    if brand is None:
        raise Http404
    return brand


def logo(request: HttpRequest) -> FileResponse:
    institution = request_institution(request)
    brand = brand_for_institution(institution=institution) if institution is not None else None
    if brand is None or not brand.logo_key:
        raise Http404
    files = tenant_storage(current_schema_name())
    response = FileResponse(files.open(brand.logo_key), content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def favicon(request: HttpRequest) -> FileResponse:
    """The institution's icon for browser tabs and bookmarks: its logo, whole, on a square."""
    institution = request_institution(request)
    brand = brand_for_institution(institution=institution) if institution is not None else None
    key = brand_favicon_key(brand=brand) if brand is not None else None
    if key is None:
        raise Http404
    response = FileResponse(tenant_storage(current_schema_name()).open(key), content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def legal_text(request: HttpRequest, kind: str) -> HttpResponse:
    """The institution's consent, terms or privacy text (sanitised HTML)."""
    institution = request_institution(request)
    titles = {"consent": _("Consent"), "terms": _("Terms of service"), "privacy": _("Privacy notice")}
    if institution is None or kind not in titles:
        raise Http404
    brand = _brand(institution)
    body = getattr(brand, f"{kind}_html")
    return render(request, "branding/legal_text.html", {"title": titles[kind], "body": body})


# --- Website embed ---------------------------------------------------------------------------


@require_GET
def embed_script(request: HttpRequest) -> HttpResponse:
    """``<script src="https://<institution>/embed.js" async></script>``: a "Request a second
    opinion" button (or, with ``data-mode="inline"``, the embeddable portal) on the host page.

    Only validated values (``#RRGGBB`` colours, our URLs, the name as a JSON string) go into
    the script, serialised with json.dumps and ``<`` escaped.
    """
    institution = request_institution(request)
    if institution is None:
        raise Http404
    brand = _brand(institution)
    portal = f"{request.scheme}://{request.get_host()}/"
    config = {
        "name": institution.name,
        "portal": portal,
        "embed": portal + "embed/",
        "primary": brand.primary_colour,
        "onPrimary": readable_text_on(brand.primary_colour),
        "label": "Request a second opinion",
    }
    payload = json.dumps(config).replace("<", "\\u003c")
    response = render(
        request,
        "branding/embed.js",
        {"config": payload},
        content_type="application/javascript; charset=utf-8",
    )
    response["Cache-Control"] = "public, max-age=300"
    # A script, loaded cross-origin by the host page: nothing here is private.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_GET
def embed_portal(request: HttpRequest) -> HttpResponse:
    """The patient portal's entry in embeddable form (framed only by the institution's allowed
    origins, see branding.middleware). Sets a probe cookie with the session cookie's own
    attributes: if the browser does not send it back from inside the frame, sessions cannot
    work there either, and the page hands off to a new tab."""
    institution = request_institution(request)
    if institution is None:
        raise Http404
    response = render(request, "branding/embed_portal.html", {"portal_url": "/"})
    response.set_cookie(
        EMBED_PROBE_COOKIE,
        "1",
        max_age=600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )
    return response


@require_GET
def embed_probe(request: HttpRequest) -> JsonResponse:
    if request_institution(request) is None:
        raise Http404
    response = JsonResponse({"cookies": EMBED_PROBE_COOKIE in request.COOKIES})
    response["Cache-Control"] = "no-store"
    return response


# --- Settings (the institution's administrator) --------------------------------------------
