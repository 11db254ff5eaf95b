"""Fetching a case *and* checking the user may see it, in one step (STYLE.md rule 3).

Every view that shows or changes a case, its files, studies or opinion goes through here.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import User
from intake.models import Case
from review.models import OpinionTemplate, PeerReview


def is_coordinator(user: User | AnonymousUser) -> bool:
    """Coordinators and institution admins run the queue (assign, request information, decline)."""
    return bool(getattr(user, "is_coordinator", False) or getattr(user, "is_institution_admin", False))


def cases_visible_to(user: User | AnonymousUser) -> QuerySet[Case]:
    """Staff see the institution's submitted cases; a patient sees only their own.

    A reviewer who is neither coordinator nor admin sees only the cases assigned to them when
    the institution restricts reviewers (``ReviewSettings.reviewers_see_only_assigned``, the
    default). The query runs in the current schema, so another institution's cases never appear.
    """
    if not user.is_authenticated:
        return Case.objects.none()
    assert isinstance(user, User)
    if user.is_institution_staff:
        cases = Case.objects.exclude(status=Case.Status.DRAFT)
        if is_coordinator(user):
            return cases
        from review.selectors import review_settings_get

        if review_settings_get().reviewers_see_only_assigned:
            # Their own cases, and those whose opinion they were asked to peer review.
            peer_cases = PeerReview.objects.filter(reviewer=user).values("case_id")
            return cases.filter(Q(assignment__reviewer=user) | Q(pk__in=peer_cases))
        return cases
    return Case.objects.filter(owner=user)


def cases_for_integrations() -> QuerySet[Case]:
    """What an institution's machine clients (integration credentials, e.g. its PACS) may read:
    every submitted case, as a coordinator sees them; never a patient's unsent draft."""
    return Case.objects.exclude(status=Case.Status.DRAFT)


def access_case(
    user: User | AnonymousUser,
    public_id: str | uuid.UUID,
    *,
    for_write: bool = False,
    related: tuple[str, ...] = (),
) -> Case:
    """The case with ``public_id`` if ``user`` may see it (404 otherwise, so an outsider
    cannot tell a case exists). ``for_write`` additionally requires staff. ``related``: one-to-one
    rows read in the same query (``select_related``), for pages that show them."""
    try:
        case = cases_visible_to(user).select_related(*related).get(public_id=public_id)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise Http404("No such case.") from None
    if for_write and not getattr(user, "is_institution_staff", False):
        raise PermissionDenied
    return case


def access_case_as(
    user: User | AnonymousUser, public_id: str | uuid.UUID, *, role: str, related: tuple[str, ...] = ()
) -> Case:
    """The case if ``user`` may see it *and* act in ``role`` on it:

    - ``"staff"``: any staff member who can see it;
    - ``"coordinator"``: a coordinator or institution admin;
    - ``"reviewer"``: the reviewer the case is assigned to;
    - ``"peer"``: a reviewer asked to peer review the case's opinion;
    - ``"patient"``: the patient (account) who owns it.
    """
    case = access_case(user, public_id, related=related)
    assert isinstance(user, User)  # access_case refused anonymous users
    if role == "patient":
        allowed = case.owner_id == user.pk
    elif role == "staff":
        allowed = user.is_institution_staff
    elif role == "coordinator":
        allowed = is_coordinator(user)
    elif role == "reviewer":
        assignment = getattr(case, "assignment", None)
        allowed = user.is_reviewer and assignment is not None and assignment.reviewer_id == user.pk
    elif role == "peer":
        allowed = user.is_reviewer and PeerReview.objects.filter(case=case, reviewer=user).exists()
    else:
        raise ValueError(f"unknown role {role!r}")
    if not allowed:
        raise PermissionDenied
    return case


def opinion_templates_visible_to(user: User) -> QuerySet[OpinionTemplate]:
    """The institution's templates and the user's own; none for staff who neither write
    opinions nor administer the institution."""
    if not (user.is_reviewer or user.is_institution_admin):
        return OpinionTemplate.objects.none()
    return OpinionTemplate.objects.filter(Q(owner__isnull=True) | Q(owner=user))


def access_opinion_template(user: User, template_id: int, *, for_write: bool = False) -> OpinionTemplate:
    """The template if ``user`` may use it (404 otherwise: someone else's personal template does
    not exist for them); ``for_write``: may change it too (the institution's templates are the
    administrators', 403 for a reviewer)."""
    template = opinion_templates_visible_to(user).filter(pk=template_id).first()
    if template is None:
        raise Http404("No such template.")
    if for_write and template.owner_id is None and not user.is_institution_admin:
        raise PermissionDenied
    return template
