"""The patient emails their doctor the link to a shared opinion and, in another email, its code.

The link and the code are never stored (only their SHA-256, ``review.sharing``): the patient's
page holds them once, and sends them back with the address to email. Both must match the
share, so the form can only ever send a real share's own link or code, never words of the
sender's choosing. The link's email never holds the code, nor the code's email the link: an
email read by someone else gives them half of what opens the opinion. Both go through the
outbox, in the patient's language, at most once per share, part and address.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy, gettext_noop

from accounts.models import User
from branding.emails import branded_email_send
from intake.models import Case
from review import sharing
from review.models import OpinionShare
from tenants.schema import current_institution

LINK = "link"
CODE = "code"
PARTS = (LINK, CODE)

ADDRESS_INVALID = gettext_noop("Please enter your doctor's email address, for example name@clinic.example.")
SHARE_NOT_FOUND = gettext_noop("This link is no longer live. Make a new link for your doctor.")
LINK_SUBJECT = gettext_lazy("A second opinion shared with you")
CODE_SUBJECT = gettext_lazy("The code for a second opinion shared with you")


class ShareEmailRefused(Exception):
    """The email cannot be sent; the message (a constant above) says why."""


@dataclass(frozen=True)
class SharedParts:
    share: OpinionShare
    token: str
    code: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def share_parts_verify(*, case: Case, share_id: str, token: str, code: str) -> SharedParts:
    """The live share of ``case`` whose link and code these are. Raises ShareEmailRefused."""
    try:
        share = OpinionShare.objects.filter(case=case, public_id=share_id).first()
    except (ValueError, ValidationError):  # a malformed id from the form
        share = None
    if (
        share is None
        or not sharing.share_live(share)
        or not hmac.compare_digest(share.token_sha256, _digest(token))
        or not hmac.compare_digest(share.code_sha256, _digest(sharing.code_normalise(code)))
    ):
        raise ShareEmailRefused(SHARE_NOT_FOUND)
    return SharedParts(share=share, token=token, code=code)


def share_email_send(*, parts: SharedParts, part: str, address: str, link: str, by: User) -> str:
    """Email the link (``part`` LINK, ``link`` its full address) or the code to ``address``,
    through the outbox. Returns the address as cleaned. Raises ShareEmailRefused."""
    if part not in PARTS:
        raise ValueError(part)
    address = address.strip()
    try:
        validate_email(address)
    except ValidationError:
        raise ShareEmailRefused(ADDRESS_INVALID) from None
    share = parts.share
    context = {
        "case": share.case,
        "sender_name": by.full_name or share.case.patient_name,
        "expires_at": share.expires_at,
    }
    if part == LINK:
        subject, template, context["link"] = LINK_SUBJECT, "review/email/opinion_share_link", link
    else:
        subject, template, context["code"] = CODE_SUBJECT, "review/email/opinion_share_code", parts.code
    branded_email_send(
        institution=current_institution(),
        to=[address],
        subject=subject,
        template=template,
        context=context,
        dedupe_key=f"share-{part}:{share.public_id}:{_digest(address.lower())[:16]}",
        language=by.language,
    )
    return address
