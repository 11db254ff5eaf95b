"""Integration credentials: create, revoke, and authenticate a machine client's Bearer token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from imaging.models import IntegrationCredential

TOKEN_PREFIX = "srk_"  # noqa: S105 (a marker that says "this is a SecondRead key", not a secret)
# Writing last_used_at on every request would cost a write per frame; a minute is precise enough.
LAST_USED_PRECISION = timedelta(minutes=1)

NAME_REQUIRED = "Give the credential a name (for example the PACS or clinic that will use it)."
SCOPE_REQUIRED = "Choose at least one permission."


class CredentialRefused(Exception):
    """A Bearer token that is malformed, unknown or revoked (one message for all three)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def credential_create(
    *, request: HttpRequest, name: str, scopes: list[str]
) -> tuple[IntegrationCredential, str]:
    """A new credential and its secret (shown once; only its hash is stored). Audited."""
    name = name.strip()
    if not name:
        raise ValueError(NAME_REQUIRED)
    valid = [scope for scope in scopes if scope in IntegrationCredential.Scope.values]
    if not valid:
        raise ValueError(SCOPE_REQUIRED)
    assert isinstance(request.user, User)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        credential = IntegrationCredential.objects.create(
            name=name[:100],
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            secret_sha256=_digest(secret),
            scopes=sorted(set(valid)),
            created_by=request.user,
        )
        audit_record(
            request=request,
            action="integration.credential_create",
            object_ref=str(credential.public_id),
            detail={"scopes": credential.scopes},
        )
    return credential, secret


def credential_revoke(*, request: HttpRequest, credential: IntegrationCredential) -> bool:
    """Revoke ``credential`` (once: a second revoke changes nothing). Audited."""
    assert isinstance(request.user, User)
    with transaction.atomic():
        revoked = IntegrationCredential.objects.filter(pk=credential.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=request.user
        )
        if revoked:
            audit_record(
                request=request, action="integration.credential_revoke", object_ref=str(credential.public_id)
            )
    return bool(revoked)


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is no such header."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def credential_authenticate(*, token: str, scope: str) -> IntegrationCredential:
    """The live credential holding ``token`` with ``scope``; CredentialRefused otherwise."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise CredentialRefused
    credential = IntegrationCredential.objects.filter(
        secret_sha256=_digest(token), revoked_at__isnull=True
    ).first()
    # The lookup is by hash; comparing again in constant time costs nothing and says so.
    if credential is None or not hmac.compare_digest(credential.secret_sha256, _digest(token)):
        raise CredentialRefused
    if scope not in credential.scopes:
        raise CredentialRefused
    now = timezone.now()
    IntegrationCredential.objects.filter(pk=credential.pk).exclude(
        last_used_at__gt=now - LAST_USED_PRECISION
    ).update(last_used_at=now)
    return credential
