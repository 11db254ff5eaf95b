"""The tus 1.0 endpoint: ``/intake/tus/`` (OPTIONS, POST) and ``/intake/tus/<id>`` (OPTIONS,
HEAD, PATCH, DELETE).

CSRF. These views are exempt from Django's CSRF token check, because tus clients send raw
bytes, not forms, and cannot carry the token. They are still safe from cross-site requests:
1. every request but OPTIONS must carry the ``Tus-Resumable`` header. A page on another site
   cannot send a custom header without a CORS preflight (OPTIONS), and we never answer one with
   ``Access-Control-Allow-*``, so the browser never sends the real request; a plain HTML form
   cannot set headers at all, nor use PATCH, HEAD or DELETE;
2. the session cookie is ``SameSite=Lax``, so the browser does not attach it to cross-site
   POST/PATCH/DELETE requests anyway, and without a session every request is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from accounts.http import InstitutionRequest
from accounts.models import User
from imaging.models import Report, Upload
from intake.tus import messages
from intake.tus.access import access_case_for_upload, access_upload
from intake.tus.body import SocketBody
from intake.tus.protocol import (
    CHECKSUM_ALGORITHMS,
    HTTP_CHECKSUM_MISMATCH,
    HTTP_INSUFFICIENT_STORAGE,
    OFFSET_CONTENT_TYPE,
    TUS_EXTENSIONS,
    TUS_VERSION,
    Body,
    Readable,
    TusError,
    describe_upload,
    encode_metadata,
    http_date,
    parse_checksum,
    parse_length,
    parse_metadata,
    parse_offset,
)
from intake.tus.services import (
    MAX_UPLOAD_SIZE,
    upload_append,
    upload_check_receiving,
    upload_create,
    upload_creation_refuse,
    upload_terminate,
)
from storage.base import StorageUnavailable

REASONS = {HTTP_CHECKSUM_MISMATCH: "Checksum Mismatch", HTTP_INSUFFICIENT_STORAGE: "Insufficient Storage"}

View = Callable[..., HttpResponse]


def _response(status: int, message: str = "", headers: dict[str, str] | None = None) -> HttpResponse:
    # The patient reads it in the wizard ("could not be sent: …"): in the page's language. Messages
    # filled in with values were translated where they were made (intake.tus.services).
    response = HttpResponse(
        gettext(message) if message else "", status=status, content_type="text/plain; charset=utf-8"
    )
    if status in REASONS:
        response.reason_phrase = REASONS[status]
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _options() -> HttpResponse:
    return _response(
        204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(MAX_UPLOAD_SIZE),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


def tus_endpoint(view: View) -> View:
    """Shared protocol handling: OPTIONS, the Tus-Resumable check (our CSRF defence, see the
    module docstring), X-HTTP-Method-Override, and turning refusals into tus answers."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            return _options()
        version = request.headers.get("Tus-Resumable")
        if version is None:
            return _response(412, messages.MISSING_TUS_HEADER, {"Tus-Version": TUS_VERSION})
        if version != TUS_VERSION:
            return _response(412, messages.UNSUPPORTED_VERSION, {"Tus-Version": TUS_VERSION})
        method = request.method or "GET"
        override = request.headers.get("X-HTTP-Method-Override", "").upper()
        if method == "POST" and override in ("PATCH", "DELETE", "HEAD"):
            method = override
        try:
            response = view(request, method, *args, **kwargs)
        except TusError as error:
            response = _response(error.status, error.message, error.headers)
        except Http404:
            response = _response(404, messages.UPLOAD_NOT_FOUND)
        except PermissionDenied:
            response = _response(403, messages.SIGN_IN)
        except StorageUnavailable:  # storage failed outside an append (HEAD, DELETE): ours
            response = _response(HTTP_INSUFFICIENT_STORAGE, messages.STORAGE_UNAVAILABLE)
        if method == "HEAD":
            response.content = b""  # a HEAD answer has headers only, refusals included
        return response

    return csrf_exempt(wrapper)


def _body(request: HttpRequest) -> Body:
    """The request body as a stream read in pieces, never as one bytes object.

    With Content-Length, gunicorn's socket (intake.tus.body), else Django's request stream
    bounded to it. Without one (chunked transfer
    encoding) Django would see an empty body, so the server's own de-chunking input is read, up
    to the upload's remaining length (services refuse more).
    """
    if request.META.get("CONTENT_LENGTH"):
        try:
            length = int(request.META["CONTENT_LENGTH"])
        except ValueError:
            raise TusError(400, messages.CHUNK_TOO_LONG) from None
        # Under gunicorn, straight from its socket into the part buffer (intake.tus.body).
        return Body(stream=SocketBody.from_environ(request.META, length) or request, length=length)
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return Body(stream=_ChunkedInput(request.META["wsgi.input"]), length=None)
    return Body(stream=request, length=0)


class _ChunkedInput:
    """The server's de-chunking input, with broken framing refused in plain words (400).

    An ``OSError`` (the connection dropped) passes through: services keep what arrived. Any
    other error while de-chunking means the framing itself is broken (gunicorn raises its
    ``ParseException``s: InvalidChunkSize, ChunkMissingTerminator, ...); without this it would
    reach Django as a 500.
    """

    def __init__(self, stream: Readable) -> None:
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._stream.read(size)
        except OSError:
            raise
        except Exception:
            raise TusError(400, messages.CHUNKED_INVALID) from None


def _has_body(request: HttpRequest) -> bool:
    return request.content_type == OFFSET_CONTENT_TYPE and (
        request.META.get("CONTENT_LENGTH", "0") not in ("", "0")
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def _state_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset)}
    if upload.status == Upload.Status.RECEIVING and upload.expires_at is not None:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    return headers


@tus_endpoint
def tus_uploads(request: InstitutionRequest, method: str) -> HttpResponse:
    """POST: create an upload (creation, creation-with-upload)."""
    if method != "POST":
        return _response(405, headers={"Allow": "OPTIONS, POST"})
    description = describe_upload(
        parse_metadata(request.headers.get("Upload-Metadata")), report_kinds=set(Report.Kind.values)
    )
    length = parse_length(request.headers.get("Upload-Length"))
    case = access_case_for_upload(request.user, description.case_public_id)
    owner = request.user
    assert isinstance(owner, User)  # access_case_for_upload refused anyone signed out
    upload = upload_create(case=case, owner=owner, length=length, description=description)
    if _has_body(request) and upload.status == Upload.Status.RECEIVING:
        # creation-with-upload. A refused first chunk (checksum mismatch, too long, broken
        # framing) refuses the whole request with that chunk's status and message, and the new
        # upload goes: the checksum extension says a request whose data is refused must not
        # change the upload, and answering 201 with offset 0 would hide the refusal.
        try:
            upload = upload_append(
                upload=upload,
                offset=0,
                body=_body(request),
                checksum=parse_checksum(request.headers.get("Upload-Checksum")),
                just_created=True,
            )
        except TusError:
            upload_creation_refuse(upload=upload)
            raise
    headers = {
        "Location": reverse("tus:upload", kwargs={"public_id": upload.public_id}),
        **_state_headers(upload),
    }
    return _response(201, headers=headers)


@tus_endpoint
def tus_upload(request: InstitutionRequest, method: str, public_id: str) -> HttpResponse:
    """HEAD: where to resume; PATCH: append a chunk; DELETE: cancel (termination)."""
    if method == "HEAD":
        upload = access_upload(request.user, public_id)
        if upload.status in (Upload.Status.RECEIVING, Upload.Status.EXPIRED, Upload.Status.FAILED):
            upload_check_receiving(upload=upload)
        headers = {**_state_headers(upload), "Upload-Length": str(upload.length)}
        tus_metadata = {key: value for key, value in upload.metadata.items() if isinstance(value, str)}
        if tus_metadata:
            headers["Upload-Metadata"] = encode_metadata(tus_metadata)
        return _response(200, headers=headers)
    if method == "PATCH":
        if request.content_type != OFFSET_CONTENT_TYPE:
            raise TusError(415, messages.CONTENT_TYPE_INVALID)
        offset = parse_offset(request.headers.get("Upload-Offset"))
        checksum = parse_checksum(request.headers.get("Upload-Checksum"))
        upload = access_upload(request.user, public_id, for_write=True)
        upload = upload_append(upload=upload, offset=offset, body=_body(request), checksum=checksum)
        if upload.status == Upload.Status.FAILED:
            return _response(HTTP_CHECKSUM_MISMATCH, upload.error_message, _state_headers(upload))
        return _response(204, headers=_state_headers(upload))
    if method == "DELETE":
        upload = access_upload(request.user, public_id)
        upload_terminate(upload=upload)
        return _response(204)
    return _response(405, headers={"Allow": "OPTIONS, HEAD, PATCH, DELETE"})
