"""Fetching a case or an upload *and* checking the signed-in user may upload to it, in one step.

Only the patient who owns a case may add files to it or continue, inspect or cancel an upload:
not staff, not another patient, and never anyone of another institution (whose accounts do not
exist in this schema). An outsider gets 404, so they cannot tell an upload exists; a visitor who
is not signed in gets 403 (a tus client cannot follow a redirect to the sign-in page).
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from imaging.models import Upload
from intake.models import Case
from intake.tus import messages
from intake.tus.protocol import TusError
from tenants.prepared import PreparedSelect

# Files may be added while the patient is filling in the wizard, and again when staff ask for
# more information; never once the case is in the queue or under review.
EDITABLE_CASE_STATUSES = (Case.Status.DRAFT, Case.Status.INFO_REQUESTED)

# Every batch of a folder drop creates an upload in its case, and every HEAD and PATCH reads one:
# compiled once (tenants.prepared). The owner is checked on the upload and on its case; for
# writing, the case must also be editable.
_MARKER_ID, _MARKER_OWNER = uuid.UUID(int=0), -1
_OWN_CASE = PreparedSelect(
    lambda public_id, owner_id: Case.objects.filter(public_id=public_id, owner_id=owner_id)[:1],
    _MARKER_ID,
    _MARKER_OWNER,
)
_OWN_UPLOAD = PreparedSelect(
    lambda public_id, owner_id: Upload.objects.filter(
        public_id=public_id, owner_id=owner_id, case__owner_id=owner_id
    )[:1],
    _MARKER_ID,
    _MARKER_OWNER,
)
_OWN_UPLOAD_OF_EDITABLE_CASE = PreparedSelect(
    lambda public_id, owner_id: Upload.objects.filter(
        public_id=public_id,
        owner_id=owner_id,
        case__owner_id=owner_id,
        case__status__in=EDITABLE_CASE_STATUSES,
    )[:1],
    _MARKER_ID,
    _MARKER_OWNER,
)


def _signed_in(user: User | AnonymousUser) -> User:
    if not user.is_authenticated:
        raise TusError(403, messages.SIGN_IN)
    assert isinstance(user, User)
    return user


def _uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def access_case_for_upload(user: User | AnonymousUser, public_id: str) -> Case:
    """The user's own case ``public_id``, if files may be added to it now."""
    owner = _signed_in(user)
    case_id = _uuid(public_id)
    if case_id is None:
        raise TusError(404, messages.CASE_NOT_FOUND)
    case = _OWN_CASE.first(case_id, owner.pk)
    if case is None:
        raise TusError(404, messages.CASE_NOT_FOUND)
    if case.status not in EDITABLE_CASE_STATUSES:
        raise TusError(403, messages.CASE_LOCKED)
    if case.consented_at is None:
        raise TusError(403, messages.CONSENT_FIRST)
    return case


def access_upload(
    user: User | AnonymousUser, public_id: str | uuid.UUID, *, for_write: bool = False
) -> Upload:
    """The user's own upload ``public_id``; ``for_write`` also requires its case to be editable.

    The owner is checked on the upload *and* on its case, so an upload can never be reached
    through a case that changed hands.
    """
    owner = _signed_in(user)
    upload_id = _uuid(public_id)
    if upload_id is None:
        raise TusError(404, messages.UPLOAD_NOT_FOUND)
    upload = (_OWN_UPLOAD_OF_EDITABLE_CASE if for_write else _OWN_UPLOAD).first(upload_id, owner.pk)
    if upload is not None:
        return upload
    if for_write and _OWN_UPLOAD.first(upload_id, owner.pk) is not None:
        raise TusError(403, messages.CASE_LOCKED)
    raise TusError(404, messages.UPLOAD_NOT_FOUND)
