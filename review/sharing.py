"""Sharing a released opinion with the patient's own doctor (``OpinionShare``).

The patient makes a link (``/shared/<token>/``) and a code. The link alone opens nothing: the
doctor types the code, which the patient passes on separately (it is shown to them once). The
link ends when it expires or when the patient revokes it. Wrong codes are counted per link:
after :data:`ATTEMPTS_BEFORE_LOCK` the link is locked for :data:`LOCK_FOR`; each further wrong
code locks it again. (A per-address limit on code attempts sits in front of this, in the view.)

Tokens have 192 random bits and codes about 50 (10 characters of Crockford's base32); only
their SHA-256 is stored. A doctor who gave the right code reads the opinion for the rest of
their browser session, and no longer than the link lives.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import User
from intake.models import Case
from review.models import Opinion, OpinionShare

ATTEMPTS_BEFORE_LOCK = 5
LOCK_FOR = datetime.timedelta(minutes=15)
LIFETIMES_DAYS = (7, 30, 90)
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


class ShareRefused(Exception):
    """The opinion cannot be shared (not released)."""


@dataclass(frozen=True)
class NewShare:
    share: OpinionShare
    token: str  # for the link; never stored
    code: str  # shown once to the patient; never stored


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def code_normalise(code: str) -> str:
    code = code.upper().replace("-", "").replace(" ", "")
    return code.translate(str.maketrans("OIL", "011"))


def share_code_format(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def opinion_share_create(*, case: Case, by: User, recipient: str, days: int) -> NewShare:
    """A new link and code for ``case``'s released opinion. Precondition: ``by`` owns the case
    (the caller fetched it through the patient's access helper)."""
    if days not in LIFETIMES_DAYS:
        raise ValueError(f"unsupported lifetime {days}")
    if not Opinion.objects.filter(case=case, released_at__isnull=False).exists():
        raise ShareRefused("The opinion is not released yet.")
    token = secrets.token_urlsafe(24)
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    share = OpinionShare.objects.create(
        case=case,
        created_by=by,
        recipient=recipient.strip()[:200],
        token_sha256=_digest(token),
        code_sha256=_digest(code),
        expires_at=timezone.now() + datetime.timedelta(days=days),
    )
    return NewShare(share=share, token=token, code=share_code_format(code))


def opinion_share_revoke(*, case: Case, share_id: str) -> bool:
    """End a link of ``case`` at once; False if there is no such live link."""
    try:
        live = OpinionShare.objects.filter(case=case, public_id=share_id, revoked_at__isnull=True)
        return bool(live.update(revoked_at=timezone.now()))
    except (ValueError, TypeError, ValidationError):  # a malformed id from the form
        return False


def opinion_shares_of(*, case: Case) -> QuerySet[OpinionShare]:
    return OpinionShare.objects.filter(case=case).order_by("-created")


def share_live(share: OpinionShare, *, now: datetime.datetime | None = None) -> bool:
    now = now or timezone.now()
    return share.revoked_at is None and share.expires_at > now


def share_by_token(token: str) -> OpinionShare | None:
    """The live link with this token (None if unknown, expired or revoked), with its case."""
    if not token or len(token) > 100:
        return None
    share = OpinionShare.objects.select_related("case").filter(token_sha256=_digest(token)).first()
    if share is None or not share_live(share):
        return None
    return share


class CodeCheck:
    RIGHT = "right"
    WRONG = "wrong"
    LOCKED = "locked"


def share_code_check(*, share: OpinionShare, code: str) -> str:
    """RIGHT, WRONG or LOCKED. Wrong codes are counted under the row lock; a locked link
    answers LOCKED without looking at the code."""
    now = timezone.now()
    with transaction.atomic():
        share = OpinionShare.objects.select_for_update().get(pk=share.pk)
        if share.locked_until and share.locked_until > now:
            return CodeCheck.LOCKED
        if hmac.compare_digest(share.code_sha256, _digest(code_normalise(code))):
            OpinionShare.objects.filter(pk=share.pk).update(failed_attempts=0, last_opened_at=now)
            return CodeCheck.RIGHT
        attempts = share.failed_attempts + 1
        locked = now + LOCK_FOR if attempts >= ATTEMPTS_BEFORE_LOCK else None
        OpinionShare.objects.filter(pk=share.pk).update(
            failed_attempts=F("failed_attempts") + 1, locked_until=locked
        )
        return CodeCheck.LOCKED if locked else CodeCheck.WRONG


def shared_opinion(share: OpinionShare) -> Opinion | None:
    return Opinion.objects.filter(case=share.case, released_at__isnull=False).first()
