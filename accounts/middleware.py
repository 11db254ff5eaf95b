"""Staff security on an institution's domain: a second factor before any page, and sign-out
after inactivity.

Patients are not affected (their own data only, and many would be locked out by an
authenticator app). Staff see every patient's data, so for them:

- without an activated TOTP authenticator, every page but the account pages sends them to set
  one up;
- with one, a session that did not pass it (signed in before activating it, or a session created
  another way) is sent to prove it (allauth's reauthenticate step records "mfa" in the session);
- a session idle longer than the institution's ``session_idle_minutes`` is signed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import User

# Paths staff may reach before passing the second factor: signing in/out and the MFA pages
# themselves, health checks, static files and the brand's logo (no patient data in any).
EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/brand/", "/favicon")

LAST_SEEN_SESSION_KEY = "staff_last_seen"
SEEN_WRITE_SECONDS = 30
IDLE_SIGNED_OUT_MESSAGE = "You were signed out after a period of inactivity. Please sign in again."
MFA_SETUP_MESSAGE = "Staff accounts need a second factor: set up an authenticator app to continue."


def session_passed_mfa(request: HttpRequest, user: User) -> bool:
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, user))


class StaffSecurityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._check(request)
        return refusal if refusal is not None else self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        tenant = getattr(request, "tenant", None)
        user = getattr(request, "user", None)
        if tenant is None or tenant.schema_name == "public" or user is None or not user.is_authenticated:
            return None
        assert isinstance(user, User)
        if not user.is_institution_staff:
            return None

        from review.selectors import review_settings_get

        idle_seconds = review_settings_get().session_idle_minutes * 60
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

        if request.path.startswith(EXEMPT_PREFIXES) or session_passed_mfa(request, user):
            return None
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            messages.info(request, MFA_SETUP_MESSAGE)
            return HttpResponseRedirect(_with_next(reverse("mfa_activate_totp"), request))
        return HttpResponseRedirect(_with_next(reverse("mfa_reauthenticate"), request))


def _with_next(url: str, request: HttpRequest) -> str:
    # Only the path goes into ``next``: queue filters live in the session, never in URLs.
    return f"{url}?{urlencode({'next': request.path})}"
