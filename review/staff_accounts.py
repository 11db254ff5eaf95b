"""An institution admin's care of staff accounts: deactivating someone who left, and resetting
a lost authenticator.

Both end the person's sessions at once. A deactivated account keeps every row it wrote (cases
assigned, opinions signed, notes, audit events: ``on_delete=PROTECT``) and its roles, so its
history reads as before; it can no longer sign in (Django refuses inactive accounts), is not
offered for assignment and takes no case by the rules. Resetting an authenticator removes the
TOTP secret and recovery codes: at the next sign-in the person is asked to set up a new one
(``review.middleware``) before any page.

Preconditions: the caller is an institution admin (the roster's ``staff_page``), and ``member``
joined as staff (``is_invited_staff``: a patient is never on the roster).
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.db import transaction

from accounts.models import User
from review.models import ReviewerProfile

SELF_DEACTIVATE_MESSAGE = "You cannot deactivate your own account."
DEACTIVATED_MESSAGE = "{name} is deactivated: signed out everywhere and can no longer sign in."
REACTIVATED_MESSAGE = "{name} can sign in again."
MFA_RESET_MESSAGE = (
    "{name}'s authenticator was removed and they were signed out: "
    "they set up a new one at their next sign-in."
)


class StaffAccountError(Exception):
    """A refused change, in words for the admin."""


def user_sessions_end(*, user: User) -> int:
    """Delete every session of ``user`` in this institution; returns how many.

    Sessions are stored encoded, without an index on the account, so each one of the schema
    is decoded: an institution's own staff and patients, a few thousand rows at most."""
    ended = []
    for session in Session.objects.all().iterator(chunk_size=500):
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            ended.append(session.session_key)
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


@transaction.atomic
def staff_member_deactivate(*, member: User, by: User) -> User:
    if member.pk == by.pk:
        raise StaffAccountError(SELF_DEACTIVATE_MESSAGE)
    member.is_active = False
    member.save(update_fields=["is_active"])
    ReviewerProfile.objects.filter(user=member).update(available=False)
    user_sessions_end(user=member)
    return member


def staff_member_reactivate(*, member: User) -> User:
    member.is_active = True
    member.save(update_fields=["is_active"])
    return member


@transaction.atomic
def staff_member_mfa_reset(*, member: User) -> int:
    """Remove ``member``'s authenticators (TOTP and recovery codes) and end their sessions;
    returns how many authenticators were removed."""
    removed: int
    removed, _ = Authenticator.objects.filter(user=member).delete()
    user_sessions_end(user=member)
    return int(removed)
