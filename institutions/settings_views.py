"""The institution administrator's settings pages on its own domain (look, texts, fee and
service, team, website embed, custom domains)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from branding.forms import (
    BrandLanguagesForm,
    BrandLookForm,
    BrandTextsForm,
    BrandTranslationForm,
    EmbedOriginsForm,
    LogoForm,
    brand_form_values,
)
from branding.models import Brand, BrandTranslation
from branding.services import (
    BRAND_TRANSLATED_FIELDS,
    LogoRejected,
    brand_languages_set,
    brand_look_save,
    brand_translation_save,
    brand_update,
)
from institutions.access import access_institution_settings
from institutions.forms import CustomDomainForm, FeeForm, InvitationForm, ServiceForm
from institutions.institution_settings import (
    institution_fee_problem,
    institution_fee_update,
    institution_service_update,
    institution_settings_get,
)
from institutions.invitations import InvitationRefused, invitation_create, invitation_revoke, invitation_send
from outbox.services import messages_failing
from tenants.custom_domains import (
    DOMAIN_VERIFIED,
    VERIFY_PREFIX,
    DomainRefused,
    custom_domain_claim,
    custom_domain_remove,
    custom_domain_verify,
)
from tenants.models import CustomDomain, Institution, Invitation
from tenants.selectors import institution_portal_url

SAVED = "Saved."


def _settings_context(
    request: HttpRequest, institution: Institution, section: str, **extra: Any
) -> dict[str, Any]:
    return {"section": section, "settings_institution": institution, **extra}


@login_required
def settings_home(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    return render(
        request,
        "institutions/settings/home.html",
        _settings_context(
            request,
            institution,
            "home",
            portal_url=institution_portal_url(institution=institution),
            failing_emails=messages_failing().count(),
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_look(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    brand = Brand.objects.get(institution=institution)
    form = BrandLookForm(request.POST or None, instance=brand)
    logo_form = LogoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid() and logo_form.is_valid():
        try:
            brand_look_save(brand=brand, values=brand_form_values(form), logo=logo_form.cleaned_data["logo"])
        except LogoRejected as refusal:
            logo_form.add_error("logo", str(refusal))
        else:
            messages.success(request, SAVED)
            return redirect("settings:look")
    return render(
        request,
        "institutions/settings/look.html",
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


def _other_languages(brand: Brand) -> list[tuple[str, str]]:
    """(code, name) of the languages offered besides the default one (texts written per language)."""
    return [
        (code, name)
        for code, name in settings.LANGUAGES
        if code in brand.language_list and code != brand.default_language
    ]


def _language_name(code: str) -> str:
    return dict(settings.LANGUAGES).get(code, code)


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
    languages_form = BrandLanguagesForm(
        initial={"languages": brand.language_list, "default_language": brand.default_language}
    )
    return render(
        request,
        "institutions/settings/texts.html",
        _settings_context(
            request,
            institution,
            "texts",
            form=form,
            languages_form=languages_form,
            default_language_name=_language_name(brand.default_language),
            other_languages=_other_languages(brand),
        ),
    )


@login_required
@require_http_methods(["POST"])
def settings_languages(request: HttpRequest) -> HttpResponse:
    """Which languages the portal offers, and its main one (on the Texts page)."""
    institution = access_institution_settings(request)
    brand = Brand.objects.get(institution=institution)
    languages_form = BrandLanguagesForm(request.POST)
    if languages_form.is_valid():
        brand_languages_set(
            brand=brand,
            languages=languages_form.cleaned_data["languages"],
            default_language=languages_form.cleaned_data["default_language"],
        )
        messages.success(request, SAVED)
        return redirect("settings:texts")
    return render(
        request,
        "institutions/settings/texts.html",
        _settings_context(
            request,
            institution,
            "texts",
            form=BrandTextsForm(instance=brand),
            languages_form=languages_form,
            default_language_name=_language_name(brand.default_language),
            other_languages=_other_languages(brand),
        ),
        status=400,
    )


@login_required
@require_http_methods(["GET", "POST"])
def settings_texts_language(request: HttpRequest, language: str) -> HttpResponse:
    """The institution's texts written in ``language``, one of its other offered languages."""
    institution = access_institution_settings(request)
    brand = Brand.objects.get(institution=institution)
    if language not in dict(_other_languages(brand)):
        raise Http404
    translated = BrandTranslation.objects.filter(institution=institution, language=language).first()
    form = BrandTranslationForm(request.POST or None, instance=translated)
    for field in form.fields.values():  # what is typed there is in that language (spell-check, readers)
        field.widget.attrs["lang"] = language
    if request.method == "POST" and form.is_valid():
        values = {name: form.cleaned_data[name] for name in BRAND_TRANSLATED_FIELDS}
        brand_translation_save(brand=brand, language=language, values=values)
        messages.success(request, SAVED)
        return redirect("settings:texts_language", language=language)
    return render(
        request,
        "institutions/settings/texts_language.html",
        _settings_context(
            request,
            institution,
            "texts",
            form=form,
            language=language,
            language_name=_language_name(language),
            default_language_name=_language_name(brand.default_language),
        ),
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
            fee_waivers_only=fee_form.cleaned_data["fee_waivers_only"],
        )
        institution_service_update(
            institution=institution,
            turnaround_business_days=service_form.cleaned_data["turnaround_business_days"],
            specialties=service_form.cleaned_data["specialties"],
            time_zone=service_form.cleaned_data["time_zone"],
        )
        messages.success(request, SAVED)
        return redirect("settings:service")
    return render(
        request,
        "institutions/settings/service.html",
        _settings_context(
            request,
            institution,
            "service",
            fee_form=fee_form,
            service_form=service_form,
            fee_problem=institution_fee_problem(institution=institution),
        ),
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
        "institutions/settings/team.html",
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
        "institutions/settings/website.html",
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
        "institutions/settings/domains.html",
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
