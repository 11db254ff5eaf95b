"""Whether a session proved its user's credentials moments ago, so a sensitive step (setting up
an authenticator, signing an opinion) need not ask for them again.

allauth counts only its own "confirm your password" step as recent (records marked
``reauthenticated``): a staff member who had just signed in was asked for their password again
on the way to setting up their authenticator. Here a sign-in counts as well, within the same
``ACCOUNT_REAUTHENTICATION_TIMEOUT`` (5 minutes) and for the same methods
(``ACCOUNT_REAUTHENTICATION_METHODS``: password, emailed code, authenticator code), read from
the same per-session records allauth writes at each step. A record is only trusted for the
account it was written for (allauth keeps the user's id beside the records), so a session that
changed hands starts afresh.
"""

from __future__ import annotations

import time

from allauth.account import app_settings as account_settings
from allauth.account.internal.flows.login import get_authentication_records, record_authentication
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest


def session_recently_authenticated(request: HttpRequest, user: AbstractBaseUser | AnonymousUser) -> bool:
    """True if this session signed ``user`` in, or confirmed their password or a code, within
    ``ACCOUNT_REAUTHENTICATION_TIMEOUT`` seconds."""
    if not user.is_authenticated:
        return False
    assert isinstance(user, AbstractBaseUser)
    now = time.time()
    window = account_settings.REAUTHENTICATION_TIMEOUT
    methods = account_settings.REAUTHENTICATION_METHODS
    for record in get_authentication_records(request, user):
        at = record.get("at")
        if record.get("method") in methods and isinstance(at, int | float) and 0 <= now - at < window:
            return True
    return False


def session_password_chosen(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Record that ``user`` typed their (new) password in this session just now: accepting an
    invitation signs them in with the password they chose on its page."""
    record_authentication(request, user, method="password", email=getattr(user, "email", None))
