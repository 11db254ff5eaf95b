"""Signing institution staff in, second factor included, for tests of any app.

Demo staff have the TOTP authenticator ``review.demo.DEMO_TOTP_SECRET`` (seed_demo), so a test
computes the current code exactly as an authenticator app would.

- ``staff_sign_in(page_or_client, email)``: the real flow (password, then the code), for a
  Playwright page or a Django test ``Client`` (with the institution's ``HTTP_HOST``).
- ``staff_force_login(client, email)``: a signed-in session that passed the second factor, without
  the flow (fast; for the many client tests that are not about signing in).

allauth refuses a TOTP code used once already (for one period), so the real flow waits for the
next code when the same account signed in moments before in the same server process.

This is the one way tests sign staff in: no test writes allauth's session keys or clears its
record of used codes itself.
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest
from django.test import Client
from django_tenants.utils import schema_context

from institutions.management.commands.seed_demo import DEMO_PASSWORD
from review.demo import DEMO_TOTP_SECRET
from tenants.models import Domain
from tests.waiting import wait_until

MFA_URL = "/accounts/2fa/authenticate/"


def totp_code(secret: str = DEMO_TOTP_SECRET, *, at: float | None = None) -> str:
    """The code an authenticator app shows for ``secret`` at ``at`` (default: now)."""
    counter = int(at if at is not None else time.time()) // mfa_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, counter))


def _wait_for_next_code(used: str) -> None:
    """Until the authenticator shows a code other than ``used`` (the next period's)."""
    wait_until(
        lambda: totp_code() != used,
        timeout=mfa_settings.TOTP_PERIOD + 5,
        message="the authenticator never showed a new code",
        interval=0.25,
    )


def staff_sign_in(
    page_or_client: Any, email: str, *, base_url: str | None = None, password: str = DEMO_PASSWORD
) -> None:
    """Sign ``email`` in through the login form and the authenticator step.

    For a Playwright page, ``base_url`` is the institution's site (e.g. ``live.url("neuro")``);
    by default the origin of the page's current URL.
    """
    if isinstance(page_or_client, Client):
        _client_sign_in(page_or_client, email, password)
    else:
        _page_sign_in(page_or_client, email, password, base_url)


def _client_sign_in(client: Client, email: str, password: str) -> None:
    response = client.post("/accounts/login/", {"login": email, "password": password})
    assert response.status_code == 302 and response["Location"].startswith(MFA_URL), "password step failed"
    for attempt in range(2):
        code = totp_code()
        response = client.post(MFA_URL, {"code": code})
        if response.status_code == 302:
            return
        if attempt == 0:
            _wait_for_next_code(code)
    raise AssertionError("the authenticator code was refused")


def _page_sign_in(page: Any, email: str, password: str, base_url: str | None) -> None:
    if base_url is None:
        parts = urlsplit(page.url)
        base_url = f"{parts.scheme}://{parts.netloc}"
    page.goto(base_url.rstrip("/") + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    # The login form's own button: the page also has the language switch's buttons (a form too).
    page.click("form:has(input[name=login]) button[type=submit]")
    page.wait_for_url("**" + MFA_URL + "**")
    for attempt in range(2):
        code = totp_code()
        page.fill("input[name=code]", code)
        page.click("form:has(input[name=code]) button[type=submit]")
        page.wait_for_load_state()
        if MFA_URL not in page.url:
            return
        if attempt == 0:
            _wait_for_next_code(code)
    raise AssertionError("the authenticator code was refused")


def staff_force_login(client: Client, email: str) -> None:
    """Sign ``email`` in on ``client``'s institution with a session that passed MFA.

    Django's own login (its signal records the sign-in and last_login, as a real one does) into
    the client's session, saved once: Client.force_login saved an empty session first and the
    MFA keys after, about half of this helper's 15 queries.
    """
    from accounts.models import User

    host = str(client.defaults.get("HTTP_HOST", "")).split(":")[0]
    domain = Domain.objects.select_related("tenant").get(domain=host)
    with schema_context(domain.tenant.schema_name):
        user = User.objects.get(email=email)
        cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
        store = import_module(settings.SESSION_ENGINE).SessionStore
        request = HttpRequest()
        request.session = store(cookie.value if cookie else None)
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        now = time.time()
        request.session["account_authentication_methods"] = [
            {"method": "password", "at": now, "email": email},
            {"method": "mfa", "at": now, "type": "totp"},
        ]
        request.session["account_authentication_methods_user"] = str(user.pk)
        request.session.save()
        client.cookies[settings.SESSION_COOKIE_NAME] = str(request.session.session_key)
