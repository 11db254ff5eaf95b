"""Account security: a second factor before any page for staff and operators, and sign-out
after inactivity for everyone.

Patients need no second factor (their own data only, and many would be locked out by an
authenticator app), but are signed out after ``PATIENT_IDLE_MINUTES`` idle minutes (a shared
family computer). Staff see every patient's data and operators run the platform, so for them:

- without an activated TOTP authenticator, every page but the account pages sends them to set
  one up;
- with one, a session that did not pass it (signed in before activating it, or a session created
  another way) is sent to prove it (allauth's reauthenticate step records "mfa" in the session);
- a session idle longer than the institution's ``session_idle_minutes`` (operators:
  ``OPERATOR_IDLE_MINUTES``) is signed out.

Activating an authenticator takes a current code from it, so the session that activates one
has proved the second factor: it is recorded as such (as allauth records a sign-in's code) and
not asked for a code again straight away.

The institution's review settings are read once per request here (``review_settings_cached``)
and shared with the access helpers and the page.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import User
from review.selectors import review_settings_cached, review_settings_get
from tenants.access import request_institution

# Paths staff may reach before passing the second factor: signing in/out and the MFA pages
# themselves, health checks, static files and the brand's logo (no patient data in any).
EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/brand/", "/favicon")

LAST_SEEN_SESSION_KEY = "staff_last_seen"
SEEN_WRITE_SECONDS = 30
IDLE_SIGNED_OUT_MESSAGE = "You were signed out after a period of inactivity. Please sign in again."
MFA_SETUP_MESSAGE = (
    "Staff and operator accounts need a second factor: set up an authenticator app to continue."
)
OPERATOR_IDLE_MINUTES = 15


def needs_second_factor(request: HttpRequest, user: User) -> bool:
    """Operators on the platform's domain, staff on an institution's."""
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return False
    return user.is_operator if tenant.schema_name == "public" else user.is_institution_staff


def _idle_minutes(request: HttpRequest, user: User) -> int:
    if request_institution(request) is None:  # the platform's domain
        return OPERATOR_IDLE_MINUTES if user.is_operator else int(settings.PATIENT_IDLE_MINUTES)
    if not user.is_institution_staff:
        return int(settings.PATIENT_IDLE_MINUTES)
    return review_settings_get().session_idle_minutes


def session_passed_mfa(request: HttpRequest, user: User) -> bool:
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, user))


class StaffSecurityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with review_settings_cached():
            refusal = self._check(request)
            if refusal is not None:
                return refusal
            activating = _staff_activating_totp(request)
            response = self.get_response(request)
            if activating is not None:
                _record_activation_as_second_factor(request, activating)
            return response

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        tenant = getattr(request, "tenant", None)
        user = getattr(request, "user", None)
        if tenant is None or user is None or not user.is_authenticated:
            return None
        assert isinstance(user, User)

        idle_seconds = _idle_minutes(request, user) * 60
        now = time.time()
        last_seen = request.session.get(LAST_SEEN_SESSION_KEY)
        if isinstance(last_seen, int | float) and now - last_seen > idle_seconds:
            logout(request)
            messages.info(request, IDLE_SIGNED_OUT_MESSAGE)
            return HttpResponseRedirect(_with_next(reverse("account_login"), request))
        # Written at most every SEEN_WRITE_SECONDS: a session write on every request would cost
        # an UPDATE per page; the idle limit is minutes, so this granularity is enough.
        if not isinstance(last_seen, int | float) or now - last_seen > SEEN_WRITE_SECONDS:
            request.session[LAST_SEEN_SESSION_KEY] = now
            # The session itself also dies after the idle time, should the browser stay away.
            request.session.set_expiry(idle_seconds)

        if not needs_second_factor(request, user):
            return None
        if request.path.startswith(EXEMPT_PREFIXES) or session_passed_mfa(request, user):
            return None
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            messages.info(request, MFA_SETUP_MESSAGE)
            return HttpResponseRedirect(_with_next(reverse("mfa_activate_totp"), request))
        return HttpResponseRedirect(_with_next(reverse("mfa_reauthenticate"), request))


def _staff_activating_totp(request: HttpRequest) -> User | None:
    """The staff member posting the TOTP activation form, if they have no authenticator yet
    (with one, allauth's view refuses to activate another and only redirects)."""
    user = getattr(request, "user", None)
    if request.method != "POST" or user is None or not user.is_authenticated:
        return None
    assert isinstance(user, User)
    if not needs_second_factor(request, user):
        return None
    if request.path != reverse("mfa_activate_totp"):
        return None
    if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        return None
    return user


def _record_activation_as_second_factor(request: HttpRequest, user: User) -> None:
    # allauth's form checked a current code of the new authenticator before activating it: the
    # same proof its sign-in step records as "mfa" in the session's authentication records.
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:  # the code was wrong: the form is shown again
        return
    record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type, activated=True)


def _with_next(url: str, request: HttpRequest) -> str:
    # Only the path goes into ``next``: queue filters live in the session, never in URLs.
    return f"{url}?{urlencode({'next': request.path})}"
