"""The institution's PACS destinations: created, tested and removed by its admins.

A STOW password or token is kept encrypted with the keys that protect second-factor secrets
(accounts.mfa_adapter: ``MFA_ENCRYPTION_KEYS``, rotated the same way), and never shown again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.mfa_adapter import secret_decrypt, secret_encrypt
from accounts.models import User
from audit.services import audit_record
from imaging.models import PacsDestination
from imaging.pacs.dimse import DEFAULT_CALLING_AE, DimseNode, PacsError, c_echo
from imaging.pacs.stow import StowEndpoint

NAME_REQUIRED = "Give the destination a name (for example “Radiology PACS”)."
KIND_REQUIRED = "Choose how the PACS takes images: DICOMweb (STOW-RS) or DICOM (C-STORE)."
URL_INVALID = "Give the PACS's DICOMweb address, starting with https:// (or http:// on a private network)."
AUTH_INCOMPLETE = "Give the user name and password, or the token, the PACS expects."
AE_INVALID = "An AE title is 1 to 16 letters, digits, spaces, hyphens, underscores or dots (not only spaces)."
HOST_INVALID = "Give the PACS's host name or IP address."
PORT_INVALID = "Give the PACS's DICOM port (1 to 65535)."
NOT_DIMSE = "Only DICOM (C-STORE) destinations can be tested with an echo."
ECHO_OK = "The PACS answered the echo."

_AE = re.compile(r"^[A-Za-z0-9 _.\-]{1,16}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}$")


@dataclass
class DestinationInput:
    name: str
    kind: str
    stow_url: str = ""
    auth: str = PacsDestination.Auth.NONE
    username: str = ""
    secret: str = ""
    called_ae: str = ""
    calling_ae: str = ""
    host: str = ""
    port: str = ""
    use_tls: bool = False


def _ae_valid(value: str) -> bool:
    return bool(_AE.match(value)) and bool(value.strip())


def _validated(data: DestinationInput) -> PacsDestination:
    """A new destination from admin input, or ValueError with the first problem in words."""
    name = data.name.strip()
    if not name:
        raise ValueError(NAME_REQUIRED)
    destination = PacsDestination(name=name[:100], kind=data.kind)
    if data.kind == PacsDestination.Kind.DICOMWEB:
        url = data.stow_url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
            raise ValueError(URL_INVALID)
        if data.auth not in PacsDestination.Auth.values:
            raise ValueError(AUTH_INCOMPLETE)
        if data.auth == PacsDestination.Auth.BASIC and not (data.username.strip() and data.secret):
            raise ValueError(AUTH_INCOMPLETE)
        if data.auth == PacsDestination.Auth.BEARER and not data.secret:
            raise ValueError(AUTH_INCOMPLETE)
        destination.stow_url = url
        destination.auth = data.auth
        destination.username = data.username.strip()[:200] if data.auth == PacsDestination.Auth.BASIC else ""
        if data.auth != PacsDestination.Auth.NONE:
            destination.secret_encrypted = secret_encrypt(data.secret)
    elif data.kind == PacsDestination.Kind.DIMSE:
        calling = data.calling_ae.strip() or DEFAULT_CALLING_AE
        if not _ae_valid(data.called_ae) or not _ae_valid(calling):
            raise ValueError(AE_INVALID)
        if not _HOST.match(data.host.strip()):
            raise ValueError(HOST_INVALID)
        try:
            port = int(data.port)
        except ValueError:
            raise ValueError(PORT_INVALID) from None
        if not 1 <= port <= 65535:
            raise ValueError(PORT_INVALID)
        destination.called_ae = data.called_ae.strip()
        destination.calling_ae = calling
        destination.host = data.host.strip()
        destination.port = port
        destination.use_tls = data.use_tls
    else:
        raise ValueError(KIND_REQUIRED)
    return destination


def destination_create(*, request: HttpRequest, data: DestinationInput) -> PacsDestination:
    """Precondition: the caller checked the user is the institution's admin. Audited."""
    assert isinstance(request.user, User)
    destination = _validated(data)
    destination.created_by = request.user
    with transaction.atomic():
        destination.save()
        audit_record(
            request=request,
            action="pacs.destination_create",
            object_ref=str(destination.public_id),
            detail={"kind": destination.kind, "name": destination.name},
        )
    return destination


def destination_remove(*, request: HttpRequest, destination: PacsDestination) -> bool:
    """Take no new sends (its history stays). Once: removing again changes nothing. Audited."""
    with transaction.atomic():
        removed = PacsDestination.objects.filter(pk=destination.pk, removed_at__isnull=True).update(
            removed_at=timezone.now()
        )
        if removed:
            audit_record(
                request=request, action="pacs.destination_remove", object_ref=str(destination.public_id)
            )
    return bool(removed)


def destination_echo(*, request: HttpRequest, destination: PacsDestination) -> str:
    """C-ECHO the destination (the test button); the outcome in words. Audited.

    Runs in the request (an admin is waiting for the answer) but outside any transaction: the
    network call holds nothing of ours.
    """
    if destination.kind != PacsDestination.Kind.DIMSE:
        return NOT_DIMSE
    try:
        c_echo(destination_node(destination))
        outcome, ok = ECHO_OK, True
    except PacsError as error:
        outcome, ok = str(error), False
    audit_record(
        request=request,
        action="pacs.destination_echo",
        object_ref=str(destination.public_id),
        detail={"ok": ok},
    )
    return outcome


def destination_node(destination: PacsDestination) -> DimseNode:
    assert destination.port is not None
    return DimseNode(
        host=destination.host,
        port=destination.port,
        called_ae=destination.called_ae,
        calling_ae=destination.calling_ae or DEFAULT_CALLING_AE,
        use_tls=destination.use_tls,
    )


def destination_endpoint(destination: PacsDestination) -> StowEndpoint:
    secret = ""
    if destination.secret_encrypted:
        secret = secret_decrypt(destination.secret_encrypted)
    return StowEndpoint(
        url=destination.stow_url, auth=destination.auth, username=destination.username, secret=secret
    )


def destinations_active() -> list[PacsDestination]:
    return list(PacsDestination.objects.filter(removed_at__isnull=True))
