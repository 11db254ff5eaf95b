"""Fetching a case *and* checking the user may see it, in one step (STYLE.md rule 3).

Every view that shows or changes a case, its files, studies or opinion goes through here.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from intake.models import Case


def cases_visible_to(user: User | AnonymousUser) -> QuerySet[Case]:
    """Staff see the institution's submitted cases; a patient sees only their own.

    The query runs in the current schema, so another institution's cases never appear.
    """
    if not user.is_authenticated:
        return Case.objects.none()
    assert isinstance(user, User)
    if user.is_institution_staff:
        return Case.objects.exclude(status=Case.Status.DRAFT)
    return Case.objects.filter(owner=user)


def access_case(user: User | AnonymousUser, public_id: str | uuid.UUID, *, for_write: bool = False) -> Case:
    """The case with ``public_id`` if ``user`` may see it (404 otherwise, so an outsider
    cannot tell a case exists). ``for_write`` additionally requires staff."""
    try:
        case = cases_visible_to(user).get(public_id=public_id)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise Http404("No such case.") from None
    if for_write and not getattr(user, "is_institution_staff", False):
        raise PermissionDenied
    return case
