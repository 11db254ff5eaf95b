"""The page a request gets when something on our side failed (``handler500`` of both URLconfs).

When the database or another service we depend on cannot be reached (a failover, a restart, a
network partition), the failure is ours and passing: the answer is 503 with ``Retry-After``, so
browsers, tus clients (which retry by themselves) and machine clients know to try again, and
proxies and monitors do not count it as a bug. Clients that speak JSON (DICOMweb, FHIR, status
polling, tus) get a JSON body instead of a page. Any other failure stays a 500.

Rendered without the request's context: the context processors read the database and the
session, the very things that may be gone. Nothing about the request or the error is shown.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from storage.base import StorageUnavailable

RETRY_AFTER_SECONDS = 30
UNAVAILABLE = "The service is briefly unavailable. Nothing you sent has been lost; please try again shortly."
FAILED = "Something went wrong on our side."
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, StorageUnavailable)


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        "Tus-Resumable" in request.headers
        or "json" in accept
        or "application/dicom" in accept
        or "multipart/related" in accept
    )


def server_error(request: HttpRequest) -> HttpResponse:
    unavailable = isinstance(sys.exc_info()[1], UNAVAILABLE_ERRORS)
    status = 503 if unavailable else 500
    if _wants_json(request):
        message = UNAVAILABLE if unavailable else FAILED
        response: HttpResponse = JsonResponse({"error": message}, status=status)
    else:
        template = "503.html" if unavailable else "500.html"
        response = HttpResponse(loader.get_template(template).render({}), status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
