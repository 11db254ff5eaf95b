"""The institution admin's page for staff single sign-on (the sign-in itself is accounts.sso)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.sso.config import (
    REMOVED,
    SAVED,
    SAVED_OFF,
    SingleSignOnInput,
    single_sign_on_get,
    single_sign_on_remove,
    single_sign_on_save,
)
from audit.services import audit_record
from institutions.access import access_institution_settings


@login_required
@require_http_methods(["GET", "POST"])
def sso_settings(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    error = ""
    if request.method == "POST":
        post = request.POST
        data = SingleSignOnInput(
            issuer=post.get("issuer", ""),
            client_id=post.get("client_id", ""),
            client_secret=post.get("client_secret", ""),
            display_name=post.get("display_name", ""),
            allowed_domains=post.get("allowed_domains", ""),
            enabled=post.get("enabled") == "on",
            required_for_staff=post.get("required_for_staff") == "on",
            trust_provider_mfa=post.get("trust_provider_mfa") == "on",
            mfa_acr_values=post.get("mfa_acr_values", ""),
        )
        try:
            saved = single_sign_on_save(data=data)
        except ValueError as refused:
            error = str(refused)
        else:
            audit_record(
                request=request,
                action="settings.sso_change",
                detail={
                    "enabled": saved.enabled,
                    "required_for_staff": saved.required_for_staff,
                    "trust_provider_mfa": saved.trust_provider_mfa,
                },
            )
            messages.success(request, SAVED if saved.enabled else SAVED_OFF)
            return redirect("settings:sso")
    config = single_sign_on_get()
    return render(
        request,
        "institutions/settings/sso.html",
        {
            "section": "sso",
            "settings_institution": institution,
            "config": config,
            "redirect_uri": request.build_absolute_uri("/accounts/oidc/institution/login/callback/"),
            "error": error,
            "form": request.POST if error else {},
        },
        status=400 if error else 200,
    )


@login_required
@require_POST
def sso_remove(request: HttpRequest) -> HttpResponse:
    access_institution_settings(request)
    if single_sign_on_remove():
        audit_record(request=request, action="settings.sso_change", detail={"removed": True})
        messages.success(request, REMOVED)
    return redirect("settings:sso")
