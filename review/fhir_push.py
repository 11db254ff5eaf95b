"""Pushing each released opinion to the institution's FHIR server, through the outbox.

Admins set the server at /settings/fhir/ (:func:`fhir_endpoint_save`). Releasing an opinion
writes an outbox message in the release's transaction (:func:`fhir_push_enqueue`); a worker
delivers it (:func:`fhir_push_deliver`) as one FHIR transaction: the Patient, an ImagingStudy
per study, the DiagnosticReport (the signed PDF as its presentedForm) and a DocumentReference
holding the PDF. The Patient and ImagingStudies are conditional creates on their identifiers
(the hospital's own ImagingStudy for a UID is referenced, never overwritten); the report and its
document are conditional updates on the opinion's identifier, so a push delivered twice (the
outbox delivers at least once) or retried by an admin creates nothing twice, and an addendum
signed after release replaces the report (status "appended", the PDF with the addendum). Failures are
retried by the outbox; those that need an admin (credentials, a refusal) are listed at
/settings/emails/ at once, with a retry.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from django.db import transaction
from django.http import HttpRequest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference

from accounts.mfa_adapter import secret_decrypt, secret_encrypt
from accounts.models import User
from audit.services import audit_append, audit_record
from outbox.deliverers import TryAgain, Undeliverable
from outbox.services import enqueue
from review.fhir import REPORT_CODE, opinion_fhir_resources, opinion_identifier
from review.fhir_client import FhirServer, capability_check, transaction_post
from review.models import FhirEndpoint, Opinion
from tenants.schema import current_institution
from tenants.selectors import institution_primary_url

OUTBOX_KIND = "fhir.push"
SINGLETON = 1

URL_INVALID = "Give the FHIR server's base address, starting with https:// (or http:// on a private network)."
AUTH_INVALID = "Choose how we sign in to the FHIR server."
TOKEN_REQUIRED = "Give the bearer token the FHIR server expects."  # noqa: S105 (a message)
CLIENT_INCOMPLETE = "Give the token endpoint's address, the client id and the client secret."
SAVED = "The FHIR server is saved: each opinion released from now on is sent to it."
SAVED_OFF = "The FHIR server is saved; sending is off."
REMOVED = "The FHIR server is removed: released opinions are no longer sent."
CHECK_OK = "The FHIR server answered, signed in, and speaks FHIR {version}."
CHECK_NOTHING = "Set the FHIR server first."


@dataclass
class EndpointInput:
    base_url: str
    auth: str
    secret: str = ""  # blank: keep the stored one
    token_url: str = ""
    client_id: str = ""
    scope: str = ""
    enabled: bool = True


def _url_valid(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= 500


def fhir_endpoint_get() -> FhirEndpoint | None:
    return FhirEndpoint.objects.filter(pk=SINGLETON).first()


def fhir_endpoint_save(*, request: HttpRequest, data: EndpointInput) -> FhirEndpoint:
    """Validate and store the institution's FHIR server (ValueError with the first problem in
    words, nothing stored). A blank secret keeps the one stored. Precondition: the caller
    checked the user is the institution's admin. Audited."""
    assert isinstance(request.user, User)
    current = fhir_endpoint_get()
    base_url = data.base_url.strip()
    if not _url_valid(base_url):
        raise ValueError(URL_INVALID)
    if data.auth not in FhirEndpoint.Auth.values:
        raise ValueError(AUTH_INVALID)
    keep = current is not None and current.auth == data.auth and bool(current.secret_encrypted)
    secret = data.secret.strip()
    if data.auth == FhirEndpoint.Auth.BEARER and not (secret or keep):
        raise ValueError(TOKEN_REQUIRED)
    token_url, client_id = data.token_url.strip(), data.client_id.strip()
    if data.auth == FhirEndpoint.Auth.CLIENT_CREDENTIALS and not (
        _url_valid(token_url) and client_id and (secret or keep)
    ):
        raise ValueError(CLIENT_INCOMPLETE)
    endpoint = current or FhirEndpoint(pk=SINGLETON)
    endpoint.base_url = base_url
    endpoint.auth = data.auth
    endpoint.enabled = data.enabled
    client = data.auth == FhirEndpoint.Auth.CLIENT_CREDENTIALS
    endpoint.token_url = token_url if client else ""
    endpoint.client_id = client_id[:200] if client else ""
    endpoint.scope = data.scope.strip()[:500] if client else ""
    if data.auth == FhirEndpoint.Auth.NONE:
        endpoint.secret_encrypted = ""
    elif secret:
        endpoint.secret_encrypted = secret_encrypt(secret)
    endpoint.updated_by = request.user
    with transaction.atomic():
        endpoint.save()
        audit_record(
            request=request,
            action="fhir.endpoint_save",
            detail={
                "server": urlsplit(base_url).hostname,
                "auth": endpoint.auth,
                "enabled": endpoint.enabled,
            },
        )
    return endpoint


def fhir_endpoint_remove(*, request: HttpRequest) -> bool:
    with transaction.atomic():
        removed, _ = FhirEndpoint.objects.filter(pk=SINGLETON).delete()
        if removed:
            audit_record(request=request, action="fhir.endpoint_remove")
    return bool(removed)


def fhir_endpoint_check(*, request: HttpRequest) -> tuple[bool, str]:
    """The test button: sign in and read the server's CapabilityStatement; (ok, words). Runs
    in the request (an admin waits for it) but outside any transaction. Audited."""
    endpoint = fhir_endpoint_get()
    if endpoint is None:
        return False, CHECK_NOTHING
    try:
        outcome, ok = CHECK_OK.format(version=capability_check(_server(endpoint))), True
    except (TryAgain, Undeliverable) as error:
        outcome, ok = str(error), False
    audit_record(
        request=request,
        action="fhir.endpoint_check",
        detail={"server": urlsplit(endpoint.base_url).hostname, "ok": ok},
    )
    return ok, outcome


def fhir_push_enqueue(*, opinion: Opinion, revision: str = "") -> None:
    """With the release's change (or an addendum's after it, named by ``revision``): push the
    opinion as it then is once that commits, if a server is set and on."""
    endpoint = fhir_endpoint_get()
    if endpoint is None or not endpoint.enabled:
        return
    number = opinion.case.number or "without a number"
    what = "an addendum to the opinion" if revision else "the opinion"
    enqueue(
        kind=OUTBOX_KIND,
        key=f"fhir-push:{opinion.public_id}" + (f":{revision}" if revision else ""),
        payload={"opinion_id": opinion.pk},
        summary=f"Send {what} of case {number} to the FHIR server",
    )


def _server(endpoint: FhirEndpoint) -> FhirServer:
    return FhirServer(
        base_url=endpoint.base_url,
        auth=endpoint.auth,
        secret=secret_decrypt(endpoint.secret_encrypted) if endpoint.secret_encrypted else "",
        token_url=endpoint.token_url,
        client_id=endpoint.client_id,
        scope=endpoint.scope,
    )


def _urn(base_url: str, name: str) -> str:
    """A stable placeholder id for a resource inside the transaction (the server assigns ids)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{base_url}/{name}')}"


def _if_none_exist(identifier: dict[str, str]) -> str:
    return f"identifier={quote(identifier['system'], safe='')}|{quote(identifier['value'], safe='')}"


def _entry(
    resource: Any, full_url: str, identifier: dict[str, str] | None = None, *, replace: bool = False
) -> dict[str, Any]:
    """A conditional create of ``resource`` matched on ``identifier`` (else its first), or with
    ``replace`` a conditional update (created if none matches, else that one replaced)."""
    data = resource.model_dump(mode="json", exclude_none=True)
    data.pop("id", None)  # the server's ids are its own; references use the fullUrls below
    first = data["identifier"][0]
    match = _if_none_exist(identifier or {"system": first["system"], "value": first["value"]})
    kind = data["resourceType"]
    if replace:
        request = {"method": "PUT", "url": f"{kind}?{match}"}
    else:
        request = {"method": "POST", "url": kind, "ifNoneExist": match}
    return {"fullUrl": full_url, "resource": data, "request": request}


def opinion_fhir_transaction(*, opinion: Opinion, base_url: str) -> dict[str, Any]:
    """The released ``opinion`` as a FHIR transaction Bundle of conditional creates and updates
    (see the module's docstring), validated."""
    assert opinion.released_at is not None
    parts = opinion_fhir_resources(opinion=opinion, base_url=base_url)
    case = opinion.case
    patient_url = _urn(base_url, f"patients/{case.public_id}")
    report_url = _urn(base_url, f"opinions/{opinion.public_id}")
    study_urls = {study.id: _urn(base_url, f"studies/{study.id}") for study in parts.studies}
    entries = [_entry(parts.patient, patient_url)]
    for study in parts.studies:
        entry = _entry(study, study_urls[study.id])  # matched on its Study Instance UID
        entry["resource"]["subject"] = {"reference": patient_url}
        entries.append(entry)
    report = _entry(parts.report, report_url, opinion_identifier(opinion, base_url), replace=True)
    report["resource"]["subject"] = {"reference": patient_url}
    if study_urls:
        report["resource"]["imagingStudy"] = [{"reference": url} for url in study_urls.values()]
    entries.append(report)
    if parts.pdf:
        pdf_identifier = {"system": f"{base_url}/opinion-pdfs", "value": str(opinion.public_id)}
        document = DocumentReference.model_validate(
            dict(
                status="current",
                docStatus="final",
                identifier=[pdf_identifier],
                type={"coding": [REPORT_CODE], "text": "Second opinion"},
                subject={"reference": patient_url},
                date=opinion.released_at.isoformat(),
                description="Second opinion (signed PDF)",
                content=[
                    {
                        "attachment": {
                            "contentType": "application/pdf",
                            "language": "en",
                            "data": base64.b64encode(parts.pdf).decode(),
                            "title": f"Second opinion {case.number or ''}".strip(),
                        }
                    }
                ],
                context={"related": [{"reference": report_url}]},
            )
        )
        document_url = _urn(base_url, f"opinion-pdfs/{opinion.public_id}")
        entries.append(_entry(document, document_url, pdf_identifier, replace=True))
    bundle = Bundle.model_validate({"type": "transaction", "entry": entries})
    return bundle.model_dump(mode="json", exclude_none=True)


def fhir_push_deliver(payload: dict[str, Any]) -> None:
    """The outbox's deliverer: push one released opinion (nothing, if the server was removed or
    turned off, or the opinion is not released). Raises TryAgain / Undeliverable (fhir_client).
    Never called inside a transaction."""
    endpoint = fhir_endpoint_get()
    if endpoint is None or not endpoint.enabled:
        return
    opinion = (
        Opinion.objects.filter(
            pk=int(payload["opinion_id"]), released_at__isnull=False, signed_at__isnull=False
        )
        .select_related("case")
        .first()
    )
    if opinion is None:
        return
    base_url = institution_primary_url(institution=current_institution())
    bundle = opinion_fhir_transaction(opinion=opinion, base_url=base_url)
    locations = transaction_post(_server(endpoint), bundle)
    audit_append(
        actor=None,
        actor_email="",
        action="fhir.push",
        case=opinion.case,
        object_ref=str(opinion.public_id),
        ip_address=None,
        allowed=True,
        detail={"server": urlsplit(endpoint.base_url).hostname, "resources": locations[:50]},
    )
