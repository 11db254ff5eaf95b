"""The institution admin's page for its FHIR server (where released opinions are pushed); the
pushing itself is review's (review/fhir_push.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from institutions.access import access_institution_settings
from outbox.services import messages_failing
from review.fhir_push import (
    OUTBOX_KIND,
    REMOVED,
    SAVED,
    SAVED_OFF,
    EndpointInput,
    fhir_endpoint_check,
    fhir_endpoint_get,
    fhir_endpoint_remove,
    fhir_endpoint_save,
)
from review.models import FhirEndpoint


@login_required
@require_http_methods(["GET", "POST"])
def fhir_settings(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    error = ""
    if request.method == "POST":
        post = request.POST
        data = EndpointInput(
            base_url=post.get("base_url", ""),
            auth=post.get("auth", ""),
            secret=post.get("secret", ""),
            token_url=post.get("token_url", ""),
            client_id=post.get("client_id", ""),
            scope=post.get("scope", ""),
            enabled=post.get("enabled") == "on",
        )
        try:
            saved = fhir_endpoint_save(request=request, data=data)
        except ValueError as refused:
            error = str(refused)
        else:
            messages.success(request, SAVED if saved.enabled else SAVED_OFF)
            return redirect("settings:fhir")
    endpoint = fhir_endpoint_get()
    return render(
        request,
        "institutions/settings/fhir.html",
        {
            "section": "fhir",
            "settings_institution": institution,
            "endpoint": endpoint,
            "auths": FhirEndpoint.Auth.choices,
            "failing": messages_failing().filter(kind=OUTBOX_KIND).count(),
            "fhir_read_url": request.build_absolute_uri("/fhir/DiagnosticReport"),
            "error": error,
            "form": request.POST if error else {},
        },
        status=400 if error else 200,
    )


@login_required
@require_POST
def fhir_remove(request: HttpRequest) -> HttpResponse:
    access_institution_settings(request)
    if fhir_endpoint_remove(request=request):
        messages.success(request, REMOVED)
    return redirect("settings:fhir")


@login_required
@require_POST
def fhir_check(request: HttpRequest) -> HttpResponse:
    access_institution_settings(request)
    ok, outcome = fhir_endpoint_check(request=request)
    (messages.success if ok else messages.error)(request, outcome)
    return redirect("settings:fhir")
