"""Patient-side access to cases: fetch *and* check ownership in one step (STYLE.md rule 3).

Staff reach cases through ``review.access.access_case``; these helpers are for the person who
started the case (the patient, or a relative or physician acting for them). The query runs in
the current institution's schema, so another institution's case never matches.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from accounts.models import User
from intake.models import Case

# States in which the patient may still change the case through the wizard. In
# INFO_REQUESTED only the file steps and the summary reopen (the care team asked for more).
EDITABLE_STATES = frozenset({Case.Status.DRAFT, Case.Status.INFO_REQUESTED})


def access_patient_case(user: User | AnonymousUser, public_id: str | uuid.UUID) -> Case:
    """The case with ``public_id`` if ``user`` started it; 404 for anyone else (staff
    included: they use the workspace), so an outsider cannot tell a case exists."""
    if not user.is_authenticated:
        raise PermissionDenied
    try:
        return Case.objects.get(public_id=public_id, owner=user)
    except (Case.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such case.") from None


def access_patient_case_for_edit(user: User | AnonymousUser, public_id: str | uuid.UUID) -> Case:
    """As ``access_patient_case``, and the case must still be open to the patient's changes
    (PermissionDenied otherwise: a submitted case is in the care team's hands)."""
    case = access_patient_case(user, public_id)
    if case.status not in EDITABLE_STATES:
        raise PermissionDenied
    return case
