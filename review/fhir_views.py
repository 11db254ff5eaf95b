"""FHIR R4 read API of released opinions, for the hospital's record system.

Machine clients send an integration key with the ``fhir.read`` permission (created by admins at
/settings/integrations/); a signed-in coordinator or admin may read too. Every read is audited.
Only released opinions exist here.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from audit.services import audit_record
from imaging.integrations.credentials import CredentialRefused, bearer_token, credential_authenticate
from imaging.models import IntegrationCredential
from review.access import is_coordinator
from review.fhir import opinion_fhir_bundle, opinion_fhir_report, released_reports_searchset
from review.models import Opinion

FHIR_JSON = "application/fhir+json"
OPINION_PREFIX = "opinion-"


def _outcome(status: int, code: str, text: str) -> HttpResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return HttpResponse(json.dumps(body), status=status, content_type=FHIR_JSON)


def _fhir(data: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(json.dumps(data, separators=(",", ":")), content_type=FHIR_JSON)
    response["Cache-Control"] = "private, no-store"
    return response


def _authorised(request: HttpRequest) -> tuple[bool, dict[str, str]]:
    token = bearer_token(request)
    if token is not None:
        try:
            credential = credential_authenticate(token=token, scope=IntegrationCredential.Scope.FHIR_READ)
        except CredentialRefused:
            return False, {}
        return True, {"credential": str(credential.public_id), "credential_name": credential.name}
    return bool(request.user.is_authenticated and is_coordinator(request.user)), {}


def _released() -> QuerySet[Opinion]:
    return Opinion.objects.filter(released_at__isnull=False, signed_at__isnull=False).select_related("case")


def _opinion(resource_id: str) -> Opinion | None:
    if not resource_id.startswith(OPINION_PREFIX):
        return None
    try:
        return _released().filter(public_id=resource_id.removeprefix(OPINION_PREFIX)).first()
    except Exception:  # a malformed uuid
        return None


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@require_GET
def report_search(request: HttpRequest) -> HttpResponse:
    allowed, detail = _authorised(request)
    if not allowed:
        audit_record(request=request, action="fhir.search", allowed=False, detail=detail or None)
        return _outcome(
            401, "login", "A key with permission to read FHIR, or a coordinator's session, is needed."
        )
    opinions = _released().order_by("-released_at")
    number = request.GET.get("identifier", "").rpartition("|")[2]
    if number:
        opinions = opinions.filter(case__number=number)
    found = list(opinions[:100])
    audit_record(request=request, action="fhir.search", detail={**detail, "results": len(found)})
    return _fhir(released_reports_searchset(opinions=found, base_url=_base(request)))


@require_GET
def report_read(request: HttpRequest, resource_id: str) -> HttpResponse:
    return _read(request, resource_id, bundle=False)


@require_GET
def bundle_read(request: HttpRequest, resource_id: str) -> HttpResponse:
    return _read(request, resource_id, bundle=True)


def _read(request: HttpRequest, resource_id: str, *, bundle: bool) -> HttpResponse:
    allowed, detail = _authorised(request)
    opinion = _opinion(resource_id)
    case = opinion.case if opinion else None
    if not allowed:
        audit_record(request=request, action="fhir.read", case=case, allowed=False, detail=detail or None)
        return _outcome(
            401, "login", "A key with permission to read FHIR, or a coordinator's session, is needed."
        )
    if opinion is None:
        return _outcome(404, "not-found", "No released opinion has this id.")
    audit_record(
        request=request, action="fhir.read", case=case, object_ref=resource_id, detail=detail or None
    )
    build = opinion_fhir_bundle if bundle else opinion_fhir_report
    return _fhir(build(opinion=opinion, base_url=_base(request)))
