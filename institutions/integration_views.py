"""The institution admin's page for integration keys (machine clients of DICOMweb); the keys
themselves are imaging's (imaging/integrations)."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from imaging.integrations.credentials import credential_create, credential_revoke
from imaging.models import IntegrationCredential
from institutions.access import access_institution_settings


@login_required
@require_http_methods(["GET", "POST"])
def integrations(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    error = ""
    secret = ""
    created = None
    if request.method == "POST":
        try:
            created, secret = credential_create(
                request=request, name=request.POST.get("name", ""), scopes=request.POST.getlist("scopes")
            )
        except ValueError as refused:
            error = str(refused)
    response = render(
        request,
        "institutions/settings/integrations.html",
        {
            "section": "integrations",
            "settings_institution": institution,
            "credentials": IntegrationCredential.objects.select_related("created_by", "revoked_by"),
            "scopes": IntegrationCredential.Scope.choices,
            "dicomweb_url": request.build_absolute_uri("/dicomweb"),
            "error": error,
            "created": created,
            "secret": secret,
        },
        status=400 if error else 200,
    )
    # The page may show a key once: it must not stay in any cache.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def integration_revoke(request: HttpRequest, credential_id: uuid.UUID) -> HttpResponse:
    access_institution_settings(request)
    credential = IntegrationCredential.objects.filter(public_id=credential_id).first()
    if credential is None:
        raise Http404
    credential_revoke(request=request, credential=credential)
    return redirect("settings:integrations")
