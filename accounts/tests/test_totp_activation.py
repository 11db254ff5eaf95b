"""A staff member who sets up their authenticator has just proved it: no second code at once."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from accounts.models import User
from tenants.models import Institution
from tests.staff import totp_code

PASSWORD = "a-long-password-1"


def _confirm_password(client: Client) -> None:
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200  # the QR code and secret


def test_it_counts_a_just_activated_authenticator_as_the_second_factor(
    neuro: Institution, neuro_client: Client
) -> None:
    with schema_context(neuro.schema_name):
        user = User.objects.create_user("fresh-coordinator@neuro.example.com", PASSWORD, is_coordinator=True)
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    response = neuro_client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    setup = neuro_client.get("/workspace/", follow=True)
    # Straight to the secret: the password typed a moment ago is not asked for again.
    assert [url for url, _ in setup.redirect_chain] == ["/accounts/2fa/totp/activate/?next=%2Fworkspace%2F"]
    assert setup.status_code == 200
    secret = neuro_client.session[SECRET_SESSION_KEY]

    wrong_code = "000000" if totp_code(secret) != "000000" else "111111"
    wrong = neuro_client.post("/accounts/2fa/totp/activate/", {"code": wrong_code})
    assert wrong.status_code == 200  # the form again: nothing activated, nothing recorded
    assert neuro_client.get("/workspace/")["Location"].startswith("/accounts/2fa/totp/activate/")

    activated = neuro_client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert activated.status_code == 302
    # Straight on to the workspace: not sent to type a code once more.
    assert neuro_client.get("/workspace/").status_code == 200


def test_it_still_asks_another_session_of_the_same_account_for_a_code(
    neuro: Institution, neuro_client: Client
) -> None:
    with schema_context(neuro.schema_name):
        user = User.objects.create_user("two-tabs@neuro.example.com", PASSWORD, is_coordinator=True)
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    other = Client(HTTP_HOST="neuro.localhost")
    for client in (neuro_client, other):
        client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    _confirm_password(neuro_client)
    secret = neuro_client.session[SECRET_SESSION_KEY]
    neuro_client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert neuro_client.get("/workspace/").status_code == 200
    assert other.get("/workspace/")["Location"].startswith("/accounts/2fa/reauthenticate/")


@override_settings(ACCOUNT_REAUTHENTICATION_TIMEOUT=0)
def test_it_asks_for_the_password_again_once_the_sign_in_is_not_recent(
    neuro: Institution, neuro_client: Client
) -> None:
    with schema_context(neuro.schema_name):
        user = User.objects.create_user("slow-coordinator@neuro.example.com", PASSWORD, is_coordinator=True)
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    neuro_client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    setup = neuro_client.get("/workspace/", follow=True)
    assert setup.redirect_chain[-1][0].startswith("/accounts/reauthenticate/")
    assert SECRET_SESSION_KEY not in neuro_client.session  # no secret shown yet
