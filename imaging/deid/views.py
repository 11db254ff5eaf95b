"""Staff download a de-identified copy of a case's images (teaching and research)."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest
from django.views.decorators.http import require_POST

from audit.services import audit_record
from imaging.cases import access_case
from imaging.deid.export import case_export_deidentified
from imaging.deid.profile import DeidOptions

ACTION = "case.deidentified_export"


@login_required
@require_POST
def case_deidentified_export(request: HttpRequest, case_id: uuid.UUID) -> FileResponse:
    """Institution staff who may see the case; a patient (even the case's own) and everyone
    else are refused. Every export and every refusal is audited."""
    case = access_case(request.user, case_id)
    if not getattr(request.user, "is_institution_staff", False):
        audit_record(request=request, action=ACTION, case=case, allowed=False)
        raise PermissionDenied
    options = DeidOptions(
        retain_longitudinal_dates=request.POST.get("retain_dates") == "on",
        clean_descriptors=request.POST.get("clean_descriptors") == "on",
    )
    export = case_export_deidentified(case=case, options=options)
    audit_record(
        request=request,
        action=ACTION,
        case=case,
        detail={
            "images": export.exported,
            "left_out_burned_in": export.left_out_burned_in,
            "retain_dates": options.retain_longitudinal_dates,
            "clean_descriptors": options.clean_descriptors,
        },
    )
    response = FileResponse(export.file, as_attachment=True, filename="deidentified-images.zip")
    response["Cache-Control"] = "private, no-store"
    return response
