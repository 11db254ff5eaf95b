"""On an institution's domain: its logo, its legal texts, the website embed (script and
embeddable portal page) and the administrator's settings pages."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from branding.colours import readable_text_on
from branding.forms import BrandTextsForm, EmbedOriginsForm, brand_form_values, brand_look_submit
from branding.models import Brand
from branding.selectors import brand_for_institution
from branding.services import brand_update
from storage.tenant import tenant_storage
from tenants.access import access_institution_settings, request_institution
from tenants.custom_domains import (
    DOMAIN_VERIFIED,
    VERIFY_PREFIX,
    DomainRefused,
    custom_domain_claim,
    custom_domain_remove,
    custom_domain_verify,
)
from tenants.forms import CustomDomainForm, FeeForm, InvitationForm, ServiceForm
from tenants.institution_settings import (
    institution_fee_update,
    institution_service_update,
    institution_settings_get,
)
from tenants.invitations import InvitationRefused, invitation_create, invitation_revoke, invitation_send
from tenants.models import CustomDomain, Institution, Invitation
from tenants.schema import current_schema_name
from tenants.selectors import institution_portal_url

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


def legal_text(request: HttpRequest, kind: str) -> HttpResponse:
    """The institution's consent, terms or privacy text (sanitised HTML)."""
    institution = request_institution(request)
    titles = {"consent": "Consent", "terms": "Terms of service", "privacy": "Privacy notice"}
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


def _settings_context(
    request: HttpRequest, institution: Institution, section: str, **extra: Any
) -> dict[str, Any]:
    return {"section": section, "settings_institution": institution, **extra}


@login_required
def settings_home(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    return render(
        request,
        "branding/settings/home.html",
        _settings_context(
            request, institution, "home", portal_url=institution_portal_url(institution=institution)
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_look(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    brand = Brand.objects.get(institution=institution)
    form, logo_form, saved = brand_look_submit(request=request, brand=brand)
    if saved:
        messages.success(request, SAVED)
        return redirect("settings:look")
    return render(
        request,
        "branding/settings/look.html",
        _settings_context(
            request,
            institution,
            "look",
            form=form,
            logo_form=logo_form,
            logo_url=f"/brand/logo.png?v={brand.logo_version}" if brand.logo_key else "",
            preview_name=institution.name,
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_texts(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    brand = Brand.objects.get(institution=institution)
    form = BrandTextsForm(request.POST or None, instance=brand)
    if request.method == "POST" and form.is_valid():
        brand_update(brand=brand, values=brand_form_values(form))
        messages.success(request, SAVED)
        return redirect("settings:texts")
    return render(
        request, "branding/settings/texts.html", _settings_context(request, institution, "texts", form=form)
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_service(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    row = institution_settings_get(institution=institution)
    is_post = request.method == "POST"
    fee_form = FeeForm(request.POST if is_post else None, instance=row, prefix="fee")
    service_form = ServiceForm(request.POST if is_post else None, instance=row, prefix="service")
    if is_post and fee_form.is_valid() and service_form.is_valid():
        institution_fee_update(
            institution=institution,
            fee_enabled=fee_form.cleaned_data["fee_enabled"],
            fee_amount=fee_form.cleaned_data["fee_amount"],
            fee_currency=fee_form.cleaned_data["fee_currency"],
        )
        institution_service_update(
            institution=institution,
            turnaround_business_days=service_form.cleaned_data["turnaround_business_days"],
            specialties=service_form.cleaned_data["specialties"],
        )
        messages.success(request, SAVED)
        return redirect("settings:service")
    return render(
        request,
        "branding/settings/service.html",
        _settings_context(request, institution, "service", fee_form=fee_form, service_form=service_form),
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_team(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    action = request.POST.get("action")
    form = InvitationForm(request.POST if action == "invite" else None)
    if request.method == "POST":
        if action == "invite" and form.is_valid():
            try:
                invitation_create(institution=institution, **form.cleaned_data)
            except InvitationRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return redirect("settings:team")
        elif action in ("revoke", "resend"):
            invitation = Invitation.objects.filter(
                institution=institution, pk=int(request.POST.get("invitation") or 0), accepted__isnull=True
            ).first()
            if invitation is None:
                raise Http404
            if action == "revoke":
                invitation_revoke(institution=institution, invitation_id=invitation.pk)
            else:
                invitation_send(invitation=invitation)
                messages.success(request, f"Invitation sent again to {invitation.email}.")
            return redirect("settings:team")
    invitations = Invitation.objects.filter(institution=institution, revoked__isnull=True).order_by(
        "-created"
    )
    return render(
        request,
        "branding/settings/team.html",
        _settings_context(request, institution, "team", form=form, invitations=invitations),
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_website(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    brand = Brand.objects.get(institution=institution)
    form = EmbedOriginsForm(request.POST or None, instance=brand)
    if request.method == "POST" and form.is_valid():
        brand_update(brand=brand, values=brand_form_values(form))
        messages.success(request, SAVED)
        return redirect("settings:website")
    return render(
        request,
        "branding/settings/website.html",
        _settings_context(
            request,
            institution,
            "website",
            form=form,
            portal_url=institution_portal_url(institution=institution),
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_domains(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    form = CustomDomainForm(request.POST if request.POST.get("action") == "add" else None)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "add" and form.is_valid():
            try:
                custom_domain_claim(institution=institution, domain=form.cleaned_data["domain"])
            except DomainRefused as refusal:
                form.add_error("domain", str(refusal))
            else:
                return redirect("settings:domains")
        elif action in ("verify", "remove"):
            claim = CustomDomain.objects.filter(
                institution=institution, pk=int(request.POST.get("claim") or 0)
            ).first()
            if claim is None:
                raise Http404
            if action == "remove":
                custom_domain_remove(institution=institution, claim_id=claim.pk)
                return redirect("settings:domains")
            try:
                custom_domain_verify(institution=institution, claim_id=claim.pk)
            except DomainRefused as refusal:
                messages.error(request, str(refusal))
            else:
                messages.success(request, DOMAIN_VERIFIED.format(domain=claim.domain))
            return redirect("settings:domains")
    return render(
        request,
        "branding/settings/domains.html",
        _settings_context(
            request,
            institution,
            "domains",
            form=form,
            claims=CustomDomain.objects.filter(institution=institution),
            cname_target=settings.CUSTOM_DOMAIN_CNAME_TARGET,
            verify_prefix=VERIFY_PREFIX,
        ),
    )
