"""Rate limits per client address and per account on every way in: institution, operator and
onboarding sign-in, sign-up, password reset and TOTP codes (opinion signing and waiver codes
are tested with their features). The client address is the real client's (config.proxy), so one
attacker is slowed without locking everyone else out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings

from accounts.ratelimits import TOO_MANY_ATTEMPTS
from config.settings.base import SR_RATE_LIMITS
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from tests.staff import MFA_URL, totp_code

ATTACKER = "203.0.113.66"
SOMEONE_ELSE = "198.51.100.20"


@pytest.fixture(autouse=True)
def _limits_on() -> Iterator[None]:
    cache.clear()
    with override_settings(ACCOUNT_RATE_LIMITS=SR_RATE_LIMITS):
        yield
    cache.clear()


def _client(host: str, address: str) -> Client:
    return Client(HTTP_HOST=host, REMOTE_ADDR=address)


def _signed_in(client: Client, email: str, password: str = DEMO_PASSWORD) -> bool:
    client.post("/accounts/login/", {"login": email, "password": password})
    return "_auth_user_id" in client.session


@pytest.mark.parametrize(
    ("host", "email"),
    [("neuro.localhost", "patient@neuro.example.com"), ("localhost", "operator@secondread.example.com")],
)
def test_it_limits_failed_sign_ins_per_account(db: None, host: str, email: str) -> None:
    for attempt in range(5):
        _signed_in(_client(host, f"192.0.2.{attempt}"), email, "wrong-password")
    # From yet another address, even the right password is refused for a while.
    response = _client(host, SOMEONE_ELSE).post(
        "/accounts/login/", {"login": email, "password": DEMO_PASSWORD}
    )
    # Not signed in, and not sent on to the authenticator step either.
    assert response.status_code == 200 and "Too many failed login attempts" in response.content.decode()


def test_it_limits_one_address_without_locking_out_the_institution(neuro: Any) -> None:
    attacker = _client("neuro.localhost", ATTACKER)
    for n in range(10):
        _signed_in(attacker, f"nobody{n}@example.org", "wrong-password")
    assert not _signed_in(_client("neuro.localhost", ATTACKER), "patient@neuro.example.com")
    # Another patient (another address behind the same proxy) is not affected.
    assert _signed_in(_client("neuro.localhost", SOMEONE_ELSE), "patient@neuro.example.com")


def test_it_limits_totp_codes_per_account(neuro: Any) -> None:
    for attempt in range(6):
        client = _client("neuro.localhost", f"192.0.2.{attempt}")
        response = client.post(
            "/accounts/login/", {"login": "reviewer2@neuro.example.com", "password": DEMO_PASSWORD}
        )
        if attempt < 5:
            assert response["Location"].startswith(MFA_URL)
            client.post(MFA_URL, {"code": "000000" if totp_code() != "000000" else "111111"})
    # The right code no longer helps for a while.
    client = _client("neuro.localhost", SOMEONE_ELSE)
    response = client.post(
        "/accounts/login/", {"login": "reviewer2@neuro.example.com", "password": DEMO_PASSWORD}
    )
    if response.status_code == 302 and response["Location"].startswith(MFA_URL):
        client.post(MFA_URL, {"code": totp_code()})
    assert "_auth_user_id" not in client.session


def test_it_limits_password_resets_per_account(neuro: Any) -> None:
    mail.outbox.clear()
    for attempt in range(8):
        _client("neuro.localhost", f"192.0.2.{attempt}").post(
            "/accounts/password/reset/", {"email": "patient@neuro.example.com"}
        )
    assert len(mail.outbox) == 5


def test_it_limits_sign_ups_per_address_and_per_email(neuro: Any) -> None:
    def sign_up(address: str, email: str) -> None:
        _client("neuro.localhost", address).post(
            "/accounts/signup/",
            {
                "email": email,
                "password1": "a-long-password-1",
                "password2": "a-long-password-1",
                "full_name": "Flood",
                "submitter_relation": "self",
            },
        )

    mail.outbox.clear()
    for n in range(5):
        sign_up(f"192.0.2.{n}", "victim@example.org")
    assert len([m for m in mail.outbox if m.to == ["victim@example.org"]]) <= 3
    mail.outbox.clear()
    for n in range(12):
        sign_up(ATTACKER, f"new{n}@example.org")
    assert len(mail.outbox) == 10


def test_it_limits_onboarding_sign_in_per_account_and_address(
    db: None, django_capture_on_commit_callbacks: Any
) -> None:
    for attempt in range(5):
        page = _client("localhost", f"192.0.2.{attempt}").post(
            "/start/sign-in/", {"email": "ada@example.org", "password": "wrong-password"}
        )
        assert page.status_code == 200
    page = _client("localhost", SOMEONE_ELSE).post(
        "/start/sign-in/", {"email": "ada@example.org", "password": "wrong-password"}
    )
    assert page.status_code == 429 and TOO_MANY_ATTEMPTS in page.content.decode()
    for n in range(10):
        _client("localhost", ATTACKER).post(
            "/start/sign-in/", {"email": f"x{n}@example.org", "password": "x"}
        )
    page = _client("localhost", ATTACKER).post("/start/sign-in/", {"email": "y@example.org", "password": "x"})
    assert page.status_code == 429


def test_it_limits_onboarding_sign_ups_per_email(db: None, django_capture_on_commit_callbacks: Any) -> None:
    mail.outbox.clear()
    for n in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            _client("localhost", f"192.0.2.{n}").post(
                "/start/",
                {
                    "institution_name": "Flood",
                    "full_name": "Flood",
                    "email": "victim@example.org",
                    "password1": "a-long-Passphrase-42",
                    "password2": "a-long-Passphrase-42",
                },
            )
    assert len(mail.outbox) == 3
