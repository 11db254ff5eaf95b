"""Downloads through signed links, for the filesystem backend (S3 serves its own signed URLs)."""

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_safe

from storage.backends import get_backend
from storage.base import ObjectNotFound
from storage.filesystem import FilesystemBackend
from storage.tenant import connection_schema_name
from storage.tokens import DownloadTokenExpired, DownloadTokenInvalid, download_token_read

INVALID_LINK_MESSAGE = "This download link is not valid."
EXPIRED_LINK_MESSAGE = "This download link has expired. Please request a new one."
WRONG_SITE_MESSAGE = "This download link is not valid on this site."
MISSING_FILE_MESSAGE = "This file is no longer available."


def _plain(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _refused(request: HttpRequest, message: str, status: int, *, reason: str) -> HttpResponse:
    """Refuse the link and put the attempt in the institution's audit log (a link that was
    tampered with, expired or minted for another site is someone probing for files)."""
    tenant = getattr(request, "tenant", None)
    # The audit log lives in institutions' schemas; requests that did not come through the
    # tenant middleware (no ``tenant``) have no log to write to.
    if tenant is not None and tenant.schema_name != "public":
        # Imported here: storage is below review in the layering (review imports storage).
        from audit.services import audit_record

        # Neither the token nor the key it claims goes into the log: only why it was refused.
        audit_record(
            request=request, action="file.signed_link_refused", allowed=False, detail={"reason": reason}
        )
    return _plain(message, status)


@require_safe
def signed_download(request: HttpRequest, token: str) -> HttpResponseBase:
    """Stream the file a signed token grants, on the tenant site the token was minted for.

    The token is the only credential (no session needed: links are opened from e-mails and by
    the viewer), so it is bound to its tenant: a key's first segment is its schema.
    """
    try:
        grant = download_token_read(token)
    except DownloadTokenExpired:
        return _refused(request, EXPIRED_LINK_MESSAGE, 410, reason="expired")
    except DownloadTokenInvalid:
        return _refused(request, INVALID_LINK_MESSAGE, 403, reason="invalid")
    schema_name = connection_schema_name()
    if grant.key.split("/", 1)[0] != schema_name:
        return _refused(request, WRONG_SITE_MESSAGE, 403, reason="wrong_site")
    backend = get_backend()
    if not isinstance(backend, FilesystemBackend):
        raise Http404
    try:
        reader = backend.open(grant.key)
    except ObjectNotFound:
        return _plain(MISSING_FILE_MESSAGE, 404)
    # Always an attachment, never inline: an uploaded HTML or SVG file rendered on our own origin
    # could run scripts in the tenant's session.
    response = FileResponse(reader, as_attachment=True, filename=grant.filename or "download")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    # The token is in the URL: do not leak it to the sites the file may link to.
    response["Referrer-Policy"] = "no-referrer"
    return response
