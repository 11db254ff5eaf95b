"""The institution admin's page for PACS destinations (where staff send studies); the
destinations and the sending are imaging's (imaging/pacs)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from imaging.models import PacsDestination
from imaging.pacs.destinations import (
    ECHO_OK,
    DestinationInput,
    destination_create,
    destination_echo,
    destination_remove,
)
from institutions.access import access_institution_settings
from intake.gateway import INBOX_NUMBER, gateway_ae_title

CREATED = "Destination “{name}” added."


def _destination(destination_id: uuid.UUID) -> PacsDestination:
    destination = PacsDestination.objects.filter(public_id=destination_id, removed_at__isnull=True).first()
    if destination is None:
        raise Http404
    return destination


@login_required
@require_http_methods(["GET", "POST"])
def pacs_destinations(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    error = ""
    if request.method == "POST":
        post = request.POST
        data = DestinationInput(
            name=post.get("name", ""),
            kind=post.get("kind", ""),
            stow_url=post.get("stow_url", ""),
            auth=post.get("auth", PacsDestination.Auth.NONE),
            username=post.get("username", ""),
            secret=post.get("secret", ""),
            called_ae=post.get("called_ae", ""),
            calling_ae=post.get("calling_ae", ""),
            host=post.get("host", ""),
            port=post.get("port", ""),
            use_tls=post.get("use_tls") == "on",
        )
        try:
            destination = destination_create(request=request, data=data)
        except ValueError as refused:
            error = str(refused)
        else:
            messages.success(request, CREATED.format(name=destination.name))
            return redirect("settings:pacs")
    return render(
        request,
        "institutions/settings/pacs.html",
        {
            "section": "pacs",
            "settings_institution": institution,
            "destinations": PacsDestination.objects.filter(removed_at__isnull=True).select_related(
                "created_by"
            ),
            "kinds": PacsDestination.Kind.choices,
            "auths": PacsDestination.Auth.choices,
            "error": error,
            "form": request.POST if error else {},
            "gateway": {
                "ae_title": gateway_ae_title(institution),
                "host": settings.DICOM_GATEWAY_HOST,
                "port": settings.DICOM_GATEWAY_PORT,
                "inbox": INBOX_NUMBER,
            },
        },
        status=400 if error else 200,
    )


@login_required
@require_POST
def pacs_destination_echo(request: HttpRequest, destination_id: uuid.UUID) -> HttpResponse:
    access_institution_settings(request)
    outcome = destination_echo(request=request, destination=_destination(destination_id))
    (messages.success if outcome == ECHO_OK else messages.error)(request, outcome)
    return redirect("settings:pacs")


@login_required
@require_POST
def pacs_destination_remove(request: HttpRequest, destination_id: uuid.UUID) -> HttpResponse:
    access_institution_settings(request)
    destination_remove(request=request, destination=_destination(destination_id))
    return redirect("settings:pacs")
