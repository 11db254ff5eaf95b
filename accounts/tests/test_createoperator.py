"""The first operator: created from a shell, a password chosen through a one-time link, and a
second factor set up before any operator page."""

from __future__ import annotations

import io
import re

import pytest
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.core.management import CommandError, call_command
from django.test import Client
from django_tenants.utils import schema_context

from accounts.management.commands.createoperator import EXISTS_MESSAGE
from accounts.models import User
from tests.staff import totp_code

EMAIL = "first-operator@platform.example"
PASSWORD = "a-long-operator-password-1"


def _create(*args: str) -> str:
    out = io.StringIO()
    call_command("createoperator", *args, stdout=out)
    return out.getvalue()


def _path_of_link(output: str) -> str:
    found = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", output)
    assert found is not None, output
    return found.group(1)


def test_it_creates_an_operator_in_the_public_schema_without_a_password(db: None) -> None:
    _create(EMAIL, "--name", "First Operator")
    with schema_context("public"):
        user = User.objects.get(email=EMAIL)
    assert user.is_operator and not user.has_usable_password() and user.full_name == "First Operator"


def test_it_walks_the_operator_to_a_second_factor(db: None) -> None:
    link = _path_of_link(_create(EMAIL))
    client = Client(HTTP_HOST="localhost")
    form = client.get(link, follow=True)
    set_password_url = form.redirect_chain[-1][0] if form.redirect_chain else link
    done = client.post(set_password_url, {"password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302

    client.post("/accounts/login/", {"login": EMAIL, "password": PASSWORD})
    # Signed in, but no operator page before an authenticator is set up.
    response = client.get("/operators/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/totp/activate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)}).status_code == 302
    assert client.get("/operators/").status_code == 200


def test_the_link_works_once(db: None) -> None:
    link = _path_of_link(_create(EMAIL))
    client = Client(HTTP_HOST="localhost")
    url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(url, {"password1": PASSWORD, "password2": PASSWORD})
    again = Client(HTTP_HOST="localhost").get(link, follow=True)
    assert b"password1" not in again.content  # the token died with the password change


def test_it_refuses_an_existing_account_without_new_link(db: None) -> None:
    _create(EMAIL)
    with pytest.raises(CommandError, match=re.escape(EXISTS_MESSAGE.format(email=EMAIL))):
        _create(EMAIL)
    assert "/accounts/password/reset/key/" in _create(EMAIL, "--new-link")


def test_it_refuses_a_bad_address(db: None) -> None:
    with pytest.raises(CommandError):
        _create("not-an-address")
