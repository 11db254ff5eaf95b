"""Signed download tokens for the filesystem backend's ``/files/signed/<token>`` view.

A token is ``django.core.signing`` output: tamper-proof but *not* encrypted, so anyone holding
the URL can base64-decode the storage key and the download file name from it. That is acceptable
only because storage keys are opaque ids (see :mod:`storage.keys`) and download file names must be
generic ("opinion.pdf"); never put patient names in either.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing

# A distinct salt so no other signed value of the project (sessions, password reset links...)
# can be replayed as a download token.
_SALT = "storage.signed-download"


class DownloadTokenInvalid(Exception):
    """The token was not minted by us, or was altered."""


class DownloadTokenExpired(DownloadTokenInvalid):
    """The token is genuine but past its expiry time."""


@dataclass(frozen=True)
class DownloadGrant:
    """What a valid token allows: downloading ``key`` as ``filename`` until ``expires_at``."""

    key: str
    filename: str | None
    expires_at: datetime


def download_token_mint(
    *, key: str, expires: timedelta, filename: str | None = None, now: datetime | None = None
) -> str:
    """Sign a grant to download ``key`` for ``expires`` from ``now`` (default: the current time).

    Preconditions: ``key`` is a full, validated backend key whose first segment is the tenant
    schema (the view compares it with the schema of the site the token is used on); ``expires``
    is positive; ``filename`` is generic.
    """
    if expires <= timedelta(0):
        raise ValueError("A download token must expire in the future.")
    issued = now or datetime.now(UTC)
    payload: dict[str, str | int] = {"k": key, "e": int((issued + expires).timestamp())}
    if filename:
        payload["f"] = filename
    return signing.dumps(payload, salt=_SALT, compress=True)


def download_token_read(token: str, *, now: datetime | None = None) -> DownloadGrant:
    """Return the grant in ``token``; raise :class:`DownloadTokenInvalid` or ``...Expired``."""
    try:
        payload = signing.loads(token, salt=_SALT)
    except signing.BadSignature as exc:
        raise DownloadTokenInvalid from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), str):
        raise DownloadTokenInvalid
    expires_at = datetime.fromtimestamp(int(payload["e"]), tz=UTC)
    if (now or datetime.now(UTC)) >= expires_at:
        raise DownloadTokenExpired
    return DownloadGrant(key=payload["k"], filename=payload.get("f"), expires_at=expires_at)
