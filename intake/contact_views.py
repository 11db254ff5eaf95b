"""The page a patient's contact address reaches from its confirmation email (no sign-in: whoever
reads that mailbox may have no account). Opening it changes nothing; the button does."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from accounts.http import InstitutionRequest
from intake.contact_email import (
    CONFIRMED,
    LINK_INVALID,
    case_for_email_token,
    patient_email_confirm,
)


@require_http_methods(["GET", "POST"])
def patient_email_confirm_view(request: InstitutionRequest, token: str) -> HttpResponse:
    case = case_for_email_token(token=token)
    if case is None:
        return render(
            request, "intake/patient_email_confirm.html", {"invalid": gettext(LINK_INVALID)}, status=404
        )
    if request.method == "POST":
        case = patient_email_confirm(case=case)
        return render(
            request,
            "intake/patient_email_confirm.html",
            {"done": gettext(CONFIRMED).format(email=case.patient_email)},
        )
    return render(request, "intake/patient_email_confirm.html", {"email": case.patient_email})
