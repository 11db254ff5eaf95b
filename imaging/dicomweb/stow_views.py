"""STOW-RS: ``POST /dicomweb/studies`` (and ``/studies/<uid>``) from machine clients holding an
integration key with the ``dicomweb.write`` permission, into one case named by its number
(``?case=NNI-000123`` or the ``X-SecondRead-Case`` header) or by the case-scoped address
``/dicomweb/cases/<case id>/studies``. Only Bearer keys are taken: a browser session cannot
store into a case from another site (and needs no CSRF exemption to be safe)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from audit.services import audit_record
from imaging.cases import case_known, cases_for_integrations
from imaging.dicomweb import views as dicomweb_views
from imaging.dicomweb.stow import Readable, StowRefused, stow_answer, stow_into_case
from imaging.integrations.credentials import CredentialRefused, bearer_token, credential_authenticate
from imaging.models import IntegrationCredential

ACTION = "dicomweb.stow"
CASE_HEADER = "X-SecondRead-Case"
KEY_REQUIRED = "Storing studies needs an API key with the permission to send studies (Authorization: Bearer)."
BAD_KEY = "This API key is not valid (unknown, revoked, or without permission to send studies)."
CASE_REQUIRED = (
    f"Name the case: ?case=<case number>, the {CASE_HEADER} header, or /dicomweb/cases/<case id>/studies."
)
NO_SUCH_CASE = "No such case."


def _plain(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


def _case(request: HttpRequest, case_id: uuid.UUID | None) -> tuple[Any, Any]:
    """The case to store into (None if the key may not reach it) and, for the audit trail only,
    the case the address names whoever may see it."""
    reachable = cases_for_integrations()
    if case_id is not None:
        return reachable.filter(public_id=case_id).first(), case_known(case_id)
    number = (request.GET.get("case") or request.headers.get(CASE_HEADER, "")).strip()
    if not number:
        raise StowRefused(400, CASE_REQUIRED)
    found = reachable.filter(number=number[:32]).first()
    return found, None


def _body(request: HttpRequest) -> Readable:
    """The request body as a stream. Django reads nothing without a Content-Length, but a
    client may stream its instances chunked; the WSGI server (gunicorn) then decodes the chunks
    itself and its input ends where the body ends."""
    if request.META.get("CONTENT_LENGTH") or "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", ""):
        return request
    stream: Readable = request.META["wsgi.input"]
    return stream


def stow(request: HttpRequest, *, case_id: uuid.UUID | None, study_uid: str | None) -> HttpResponseBase:
    token = bearer_token(request)
    if token is None:
        audit_record(request=request, action=ACTION, allowed=False, detail={"reason": "no_credential"})
        response = _plain(401, KEY_REQUIRED)
        response["WWW-Authenticate"] = 'Bearer realm="SecondRead"'
        return response
    try:
        credential = credential_authenticate(token=token, scope=IntegrationCredential.Scope.DICOMWEB_WRITE)
    except CredentialRefused:
        audit_record(request=request, action=ACTION, allowed=False, detail={"reason": "bad_credential"})
        response = _plain(401, BAD_KEY)
        response["WWW-Authenticate"] = 'Bearer realm="SecondRead", error="invalid_token"'
        return response
    who = {"credential": str(credential.public_id), "credential_name": credential.name}
    try:
        case, known = _case(request, case_id)
        if case is None:
            audit_record(request=request, action=ACTION, case=known, allowed=False, detail=who)
            return _plain(404, NO_SUCH_CASE)
        result = stow_into_case(
            stream=_body(request),
            content_type=request.META.get("CONTENT_TYPE", ""),
            case=case,
            credential=credential,
            study_uid=study_uid,
        )
    except StowRefused as refused:
        return _plain(refused.status, refused.message)
    audit_record(
        request=request,
        action=ACTION,
        case=case,
        object_ref=study_uid or "",
        detail={**who, "stored": len(result.stored), "failed": len(result.failed)},
    )
    status = 200 if not result.failed else (202 if result.stored else 409)
    retrieve = request.build_absolute_uri(reverse("dicomweb:search_studies"))
    response = HttpResponse(
        json.dumps(stow_answer(result, retrieve_url=retrieve)),
        status=status,
        content_type="application/dicom+json",
    )
    reasons = sorted({part.message for part in result.failed})
    if reasons:
        # PS3.18 §8.7.4: Warning 299 with words a person can act on; one header per reason.
        response["Warning"] = ", ".join(f'299 SecondRead: "{reason}"' for reason in reasons)
    response["Cache-Control"] = "private, no-store"
    return response


@csrf_exempt
def studies(request: HttpRequest, case_id: uuid.UUID | None = None) -> HttpResponseBase:
    """QIDO-RS search (GET, HEAD, OPTIONS) or STOW-RS (POST) on ``/studies``."""
    if request.method == "POST":
        return stow(request, case_id=case_id, study_uid=None)
    return dicomweb_views.search_studies(request, case_id=case_id)


@csrf_exempt
def study(request: HttpRequest, study_uid: str, case_id: uuid.UUID | None = None) -> HttpResponseBase:
    """WADO-RS retrieve (GET, HEAD, OPTIONS) or STOW-RS into that study (POST)."""
    if request.method == "POST":
        return stow(request, case_id=case_id, study_uid=study_uid)
    return dicomweb_views.retrieve_study(request, study_uid=study_uid, case_id=case_id)
