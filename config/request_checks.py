"""Requests whose query string no page could mean are refused with 400 before any view.

A query key or value holding control characters (CR, LF, NUL, ...) is never a real link or
form: it is someone probing for header injection (a key echoed into a response header, as
DICOMweb's warnings do, raised a 500). Refusing it once here is simpler and safer than making
every view that reads a parameter defend against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MALFORMED_QUERY = "This address has characters it cannot have. Check the link and try again."


def query_is_malformed(request: HttpRequest) -> bool:
    return any(
        _CONTROL.search(key) or any(_CONTROL.search(value) for value in values)
        for key, values in request.GET.lists()
    )


class MalformedQueryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if query_is_malformed(request):
            return HttpResponseBadRequest(MALFORMED_QUERY, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
