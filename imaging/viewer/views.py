"""The standalone image viewer page of a case (the case workspace embeds the same component)."""

from __future__ import annotations

import uuid

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from audit.services import audit_record
from imaging.cases import access_case, case_known

ACTION = "viewer.open"


def viewer_page(request: HttpRequest, case_id: uuid.UUID) -> HttpResponse:
    """Staff who may see the case, and the case's own patient; everyone else gets 404
    (signed-out visitors are sent to sign in). Every attempt is audited."""
    if not request.user.is_authenticated:
        # Looked up only to put the refusal on the case's audit trail.
        known = case_known(case_id)
        if known is not None:
            audit_record(request=request, action=ACTION, case=known, object_ref=str(case_id), allowed=False)
        return redirect_to_login(request.get_full_path())
    try:
        case = access_case(request.user, case_id)
    except Http404:
        known = case_known(case_id)
        if known is not None:
            audit_record(request=request, action=ACTION, case=known, object_ref=str(case_id), allowed=False)
        raise
    audit_record(request=request, action=ACTION, case=case, object_ref=str(case_id))
    return render(request, "imaging/viewer/page.html", {"case": case})
