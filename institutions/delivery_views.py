"""The institution admin's list of deliveries that keep failing or were given up (the outbox's:
emails, PACS sends, FHIR reports), each with a retry (audited)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from audit.services import audit_record
from institutions.access import access_institution_settings
from outbox.services import MAX_ATTEMPTS, message_retry, messages_failing

RETRY_QUEUED = "It will be sent again in a moment."
RETRY_REFUSED = "That message is not waiting to be sent again (it may have just been delivered)."


@login_required
@require_GET
def deliveries(request: HttpRequest) -> HttpResponse:
    institution = access_institution_settings(request)
    return render(
        request,
        "institutions/settings/deliveries.html",
        {
            "section": "deliveries",
            "settings_institution": institution,
            "failing": messages_failing()[:200],
            "max_attempts": MAX_ATTEMPTS,
        },
    )


@login_required
@require_POST
def delivery_retry(request: HttpRequest, message_id: int) -> HttpResponse:
    access_institution_settings(request)  # the message is looked up in this institution's schema only
    queued = message_retry(message_id=message_id)
    # Who sent what again (an email to a patient, a report to a hospital's systems) is on record.
    audit_record(request=request, action="delivery.retry", object_ref=f"outbox:{message_id}", allowed=queued)
    if queued:
        messages.success(request, RETRY_QUEUED)
    else:
        messages.error(request, RETRY_REFUSED)
    return redirect("settings:deliveries")
