"""Who may reach what on the platform domain and in an institution's settings.

Each helper fetches and authorises in one step and raises (PermissionDenied / Http404), so a
view cannot forget half of the check.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from accounts.models import User
from tenants.access import request_institution
from tenants.models import Institution, Onboarding

ONBOARDING_SESSION_KEY = "onboarding_id"


def access_onboarding(request: HttpRequest) -> Onboarding:
    """The signed-in applicant's onboarding on the platform domain (PermissionDenied if none)."""
    if request_institution(request) is not None:
        raise Http404  # the wizard exists on the platform domain only
    onboarding_id = request.session.get(ONBOARDING_SESSION_KEY)
    onboarding = (
        Onboarding.objects.select_related("institution")
        .filter(pk=onboarding_id, email_verified__isnull=False)
        .first()
        if isinstance(onboarding_id, int)
        else None
    )
    if onboarding is None:
        raise PermissionDenied
    return onboarding


def access_operator(request: HttpRequest) -> User:
    """A platform operator on the platform domain. Precondition: login_required ran."""
    if request_institution(request) is not None:
        raise Http404
    user = request.user
    if not isinstance(user, User) or not user.is_operator:
        raise PermissionDenied
    return user


def access_institution_settings(request: HttpRequest) -> Institution:
    """The institution whose domain this is, if the signed-in user is its administrator.

    Accounts live in the institution's schema, so a user of another institution cannot even be
    signed in here; coordinators, reviewers and patients are refused.
    Precondition: login_required ran.
    """
    institution = request_institution(request)
    if institution is None:
        raise Http404
    user = request.user
    if not isinstance(user, User) or not user.is_institution_admin:
        raise PermissionDenied
    return institution
