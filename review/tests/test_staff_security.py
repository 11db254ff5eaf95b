"""Staff need a second factor before any patient data, and are signed out when idle."""

from __future__ import annotations

import time
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import User
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from review.middleware import IDLE_SIGNED_OUT_MESSAGE, LAST_SEEN_SESSION_KEY
from tenants.models import Institution
from tests.staff import MFA_URL, staff_force_login, staff_sign_in, totp_code


def test_it_asks_staff_for_the_authenticator_code_after_the_password(neuro_client: Client) -> None:
    response = neuro_client.post(
        "/accounts/login/", {"login": "reviewer2@neuro.example.com", "password": DEMO_PASSWORD}
    )
    assert response["Location"].startswith(MFA_URL)
    assert "_auth_user_id" not in neuro_client.session  # not signed in on the password alone
    assert (
        neuro_client.post(MFA_URL, {"code": "000000" if totp_code() != "000000" else "111111"}).status_code
        == 200
    )
    assert "_auth_user_id" not in neuro_client.session


def test_it_signs_staff_in_with_password_and_authenticator_code(neuro_client: Client) -> None:
    staff_sign_in(neuro_client, "admin@neuro.example.com")
    assert neuro_client.get("/workspace/").status_code == 200


@pytest.fixture
def staff_without_mfa(neuro: Institution) -> User:
    with schema_context(neuro.schema_name):
        return User.objects.create_user(
            "new-coordinator@neuro.example.com", "a-long-password-1", is_coordinator=True
        )


def test_it_sends_staff_without_an_authenticator_to_set_one_up(
    neuro: Institution, neuro_client: Client, staff_without_mfa: User
) -> None:
    with schema_context(neuro.schema_name):
        neuro_client.force_login(staff_without_mfa)
    response = neuro_client.get("/workspace/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/totp/activate/")
    # The set-up page itself is reachable.
    assert neuro_client.get("/accounts/2fa/totp/activate/").status_code in (200, 302)


def test_it_asks_a_session_that_skipped_the_second_factor_to_pass_it(
    neuro: Institution, neuro_client: Client
) -> None:
    with schema_context(neuro.schema_name):
        user = User.objects.get(email="coordinator@neuro.example.com")
        assert Authenticator.objects.filter(user=user).exists()
        neuro_client.force_login(user)
    response = neuro_client.get("/workspace/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/reauthenticate/")


def test_it_signs_staff_out_after_the_idle_time(neuro_client: Client) -> None:
    staff_force_login(neuro_client, "coordinator@neuro.example.com")
    assert neuro_client.get("/workspace/").status_code == 200
    session = neuro_client.session
    session[LAST_SEEN_SESSION_KEY] = time.time() - 16 * 60  # default: 15 minutes
    session.save()
    response = neuro_client.get("/workspace/", follow=True)
    assert IDLE_SIGNED_OUT_MESSAGE in response.content.decode()
    assert "_auth_user_id" not in neuro_client.session


def test_it_leaves_patients_without_a_second_factor(neuro_client: Client) -> None:
    neuro_client.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": DEMO_PASSWORD})
    assert "_auth_user_id" in neuro_client.session
    assert neuro_client.get("/").status_code == 200


def test_it_signs_patients_out_after_their_idle_time(neuro_client: Client, settings: Any) -> None:
    neuro_client.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": DEMO_PASSWORD})
    assert neuro_client.get("/").status_code == 200
    session = neuro_client.session
    session[LAST_SEEN_SESSION_KEY] = time.time() - (settings.PATIENT_IDLE_MINUTES + 1) * 60
    session.save()
    response = neuro_client.get("/", follow=True)
    assert IDLE_SIGNED_OUT_MESSAGE in response.content.decode()
    assert "_auth_user_id" not in neuro_client.session
