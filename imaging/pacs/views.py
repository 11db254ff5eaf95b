"""Staff send a case's studies to one of the institution's PACS destinations."""

from __future__ import annotations

import contextlib
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.services import audit_record
from imaging.cases import access_case
from imaging.models import PacsDestination
from imaging.pacs.sends import DESTINATION_GONE, pacs_send_request

ACTION = "pacs.send_request"
QUEUED = "Sending {count} stud{plural} to {name}. The status is shown below and updates as it goes."


@login_required
@require_POST
def case_send(request: HttpRequest, case_id: uuid.UUID) -> HttpResponseRedirect:
    """Institution staff who may see the case; patients (even the case's own) and everyone
    else are refused, and the refusal is audited."""
    case = access_case(request.user, case_id)
    if not getattr(request.user, "is_institution_staff", False):
        audit_record(request=request, action=ACTION, case=case, allowed=False)
        raise PermissionDenied
    back = reverse("review:case", args=[case.public_id]) + "#pacs"
    destination = None
    with contextlib.suppress(ValueError):
        destination = PacsDestination.objects.filter(
            public_id=uuid.UUID(request.POST.get("destination", "")), removed_at__isnull=True
        ).first()
    if destination is None:
        messages.error(request, DESTINATION_GONE)
        return HttpResponseRedirect(back)
    try:
        sends = pacs_send_request(
            request=request,
            case=case,
            destination=destination,
            deidentified=request.POST.get("deidentified") == "on",
        )
    except ValueError as refused:
        messages.error(request, str(refused))
        return HttpResponseRedirect(back)
    plural = "y" if len(sends) == 1 else "ies"
    messages.success(request, QUEUED.format(count=len(sends), plural=plural, name=destination.name))
    return HttpResponseRedirect(back)
