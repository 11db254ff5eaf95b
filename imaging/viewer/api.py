"""The viewer's JSON API for measurements and key images (``imaging.viewer.annotations``).

Session-authenticated, CSRF-checked (the viewer sends the token in ``X-CSRFToken``), staff of
the institution who may see the case only, every request audited (allowed or refused).
"""

from __future__ import annotations

import json
import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from audit.services import audit_record
from imaging.cases import case_known
from imaging.viewer.annotations import (
    AnnotationInvalid,
    access_case_for_marks,
    annotation_create,
    annotation_delete,
    annotation_input_parse,
    annotation_json,
    annotations_of,
)

ACTION_LIST = "viewer.annotations.list"
ACTION_CREATE = "viewer.annotation.create"
ACTION_DELETE = "viewer.annotation.delete"
SIGN_IN_AGAIN = "Your session has ended. Sign in again."
NOT_JSON = "The request was not valid JSON."


def _refused(request: HttpRequest, action: str, case_id: uuid.UUID, error: Exception) -> HttpResponse:
    known = case_known(case_id)
    if known is not None:
        audit_record(request=request, action=action, case=known, object_ref=str(case_id), allowed=False)
    if isinstance(error, PermissionDenied):
        return JsonResponse({"error": "You may not mark images of this case."}, status=403)
    return JsonResponse({"error": "No such case."}, status=404)


@require_http_methods(["GET", "POST"])
def annotation_list(request: HttpRequest, case_id: uuid.UUID) -> HttpResponse:
    """GET: the case's marks. POST (JSON): save one mark; 201 with it, or 400 with the reason."""
    action = ACTION_CREATE if request.method == "POST" else ACTION_LIST
    if not request.user.is_authenticated:
        return JsonResponse({"error": SIGN_IN_AGAIN}, status=401)
    try:
        case = access_case_for_marks(request.user, case_id)
    except (Http404, PermissionDenied) as error:
        return _refused(request, action, case_id, error)
    if request.method == "GET":
        audit_record(request=request, action=action, case=case, object_ref=str(case_id))
        return JsonResponse({"annotations": [annotation_json(a) for a in annotations_of(case=case)]})
    try:
        data = annotation_input_parse(json.loads(request.body or b"null"))
        created = annotation_create(case=case, author=request.user, data=data)
    except json.JSONDecodeError:
        return JsonResponse({"error": NOT_JSON}, status=400)
    except AnnotationInvalid as error:
        return JsonResponse({"error": str(error)}, status=400)
    audit_record(
        request=request,
        action=action,
        case=case,
        object_ref=str(created.public_id),
        detail={"kind": created.kind},
    )
    return JsonResponse(annotation_json(created), status=201)


@require_http_methods(["DELETE"])
def annotation_detail(request: HttpRequest, case_id: uuid.UUID, annotation_id: uuid.UUID) -> HttpResponse:
    """DELETE: remove one mark of the case (204), 404 if the case has no such mark."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": SIGN_IN_AGAIN}, status=401)
    try:
        case = access_case_for_marks(request.user, case_id)
    except (Http404, PermissionDenied) as error:
        return _refused(request, ACTION_DELETE, case_id, error)
    if not annotation_delete(case=case, public_id=annotation_id):
        return JsonResponse({"error": "No such mark."}, status=404)
    audit_record(request=request, action=ACTION_DELETE, case=case, object_ref=str(annotation_id))
    return HttpResponse(status=204)
