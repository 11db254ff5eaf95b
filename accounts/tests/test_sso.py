"""Staff single sign-on through the institution's own OpenID Connect provider (accounts.sso),
against a local provider that signs real ID tokens (tests/oidc_double.py)."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

import pytest
import requests
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django_tenants.utils import schema_context

from accounts.adapters import SSO_REQUIRED
from accounts.models import SingleSignOn, User
from accounts.sso.adapter import EMAIL_NOT_VERIFIED, NOT_STAFF_HERE, SIGN_IN_FAILED
from accounts.sso.config import ISSUER_MISMATCH, SingleSignOnInput, single_sign_on_save
from audit.models import AuditEvent
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from tenants.models import Institution
from tests.oidc_double import CLIENT_ID, CLIENT_SECRET, IdentityUser, OidcDouble
from tests.staff import staff_force_login

MFA_URL = "/accounts/2fa/authenticate/"
LOGIN_URL = "/accounts/oidc/institution/login/"


@pytest.fixture
def idp() -> Iterator[OidcDouble]:
    double = OidcDouble().start()
    yield double
    double.stop()


def _configure(idp: OidcDouble, **options: object) -> None:
    values: dict[str, object] = {
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "display_name": "Neuro Hospital account",
        "allowed_domains": "",
        "enabled": True,
        "required_for_staff": False,
        "trust_provider_mfa": False,
        "mfa_acr_values": "",
    }
    values.update(options)
    with schema_context("neuro"):
        single_sign_on_save(data=SingleSignOnInput(**values))  # type: ignore[arg-type]


@pytest.fixture
def neuro_sso(neuro: Institution, idp: OidcDouble) -> OidcDouble:
    _configure(idp)
    return idp


def _sso_sign_in(client: Client, idp: OidcDouble, user: IdentityUser) -> Any:
    """Button → provider (which signs ``user`` in) → callback; the callback's response."""
    idp.user = user
    started = client.post(LOGIN_URL, {"process": "login"})
    assert started.status_code == 302 and started["Location"].startswith(idp.issuer + "/authorize?")
    back = requests.get(started["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    callback = back.headers["Location"].split("://", 1)[1].split("/", 1)[1]
    return client.get("/" + callback)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _staff(email: str, sub: str = "staff-1", **extra: object) -> IdentityUser:
    return IdentityUser(sub=sub, email=email, **extra)  # type: ignore[arg-type]


def test_it_signs_staff_in_and_still_asks_for_the_authenticator(
    neuro_client: Client, neuro_sso: OidcDouble
) -> None:
    response = _sso_sign_in(neuro_client, neuro_sso, _staff("coordinator@neuro.example.com"))
    assert response.status_code == 302 and response["Location"].startswith(MFA_URL)
    assert not _signed_in(neuro_client)
    with schema_context("neuro"):
        linked = SocialAccount.objects.get(uid="staff-1")
        assert linked.user.email == "coordinator@neuro.example.com"


def test_it_counts_the_providers_mfa_when_trusted(neuro_client: Client, idp: OidcDouble) -> None:
    _configure(idp, trust_provider_mfa=True)
    user = _staff("reviewer1@neuro.example.com", amr=["pwd", "mfa"])
    response = _sso_sign_in(neuro_client, idp, user)
    assert response.status_code == 302 and MFA_URL not in response["Location"]
    assert _signed_in(neuro_client)
    assert neuro_client.get("/workspace/").status_code == 200
    with schema_context("neuro"):
        assert AuditEvent.objects.filter(action="auth.sign_in", actor_email=user.email).exists()


def test_it_asks_for_the_authenticator_when_the_provider_used_one_factor(
    neuro_client: Client, idp: OidcDouble
) -> None:
    _configure(idp, trust_provider_mfa=True)
    response = _sso_sign_in(neuro_client, idp, _staff("reviewer1@neuro.example.com", amr=["pwd"]))
    assert response["Location"].startswith(MFA_URL)


@pytest.mark.parametrize("fault", ["wrong_issuer", "bad_signature", "expired", "wrong_audience"])
def test_it_refuses_a_bad_id_token(neuro_client: Client, neuro_sso: OidcDouble, fault: str) -> None:
    neuro_sso.fault = fault
    response = _sso_sign_in(neuro_client, neuro_sso, _staff("coordinator@neuro.example.com"))
    assert response.status_code == 403
    assert escape(SIGN_IN_FAILED) in response.content.decode()
    assert not _signed_in(neuro_client)
    with schema_context("neuro"):
        assert not SocialAccount.objects.exists()
        assert AuditEvent.objects.filter(action="auth.sso_refused", detail__reason="token_refused").exists()


def test_it_refuses_an_id_token_replayed_from_an_earlier_sign_in(
    neuro_client: Client, neuro_sso: OidcDouble
) -> None:
    _sso_sign_in(Client(HTTP_HOST="neuro.localhost"), neuro_sso, _staff("coordinator@neuro.example.com"))
    neuro_sso.fault = "nonce_replay"  # the provider (or a thief) answers with the first sign-in's nonce
    response = _sso_sign_in(neuro_client, neuro_sso, _staff("coordinator@neuro.example.com"))
    assert response.status_code == 403 and not _signed_in(neuro_client)


@pytest.mark.parametrize(
    ("email", "verified", "message"),
    [
        ("patient@neuro.example.com", True, NOT_STAFF_HERE),  # a patient's address: never staff
        ("reviewer1@cancer.example.com", True, NOT_STAFF_HERE),  # staff of another institution
        ("stranger@hospital.example.org", True, NOT_STAFF_HERE),  # nobody here: never created
        ("coordinator@neuro.example.com", False, EMAIL_NOT_VERIFIED),  # the provider did not vouch
    ],
)
def test_it_refuses_anyone_but_this_institutions_staff(
    neuro_client: Client, neuro_sso: OidcDouble, email: str, verified: bool, message: str
) -> None:
    with schema_context("neuro"):
        users_before = User.objects.count()
    response = _sso_sign_in(neuro_client, neuro_sso, _staff(email, email_verified=verified))
    assert response.status_code == 403
    assert escape(message) in response.content.decode()
    assert not _signed_in(neuro_client)
    with schema_context("neuro"):
        assert User.objects.count() == users_before
        assert not SocialAccount.objects.exists()


def test_it_never_links_an_unconfirmed_account(neuro_client: Client, neuro_sso: OidcDouble) -> None:
    # Someone registered the future colleague's address first and never confirmed it: the
    # provider's sign-in must not hand that account over (pre-hijacking, issue 9 item 1).
    with schema_context("neuro"):
        squatter = User.objects.create_user(
            "new.doctor@neuro.example.com", "squatters-password-1", is_reviewer=True, is_invited_staff=True
        )
        EmailAddress.objects.create(user=squatter, email=squatter.email, verified=False, primary=True)
    response = _sso_sign_in(neuro_client, neuro_sso, _staff("new.doctor@neuro.example.com"))
    assert response.status_code == 403 and not _signed_in(neuro_client)
    with schema_context("neuro"):
        assert not SocialAccount.objects.filter(user=squatter).exists()


def test_it_keeps_to_the_allowed_domains(neuro_client: Client, idp: OidcDouble) -> None:
    _configure(idp, allowed_domains="neuro-hospital.org")
    response = _sso_sign_in(neuro_client, idp, _staff("coordinator@neuro.example.com"))
    assert response.status_code == 403 and not _signed_in(neuro_client)


def test_it_refuses_staff_passwords_when_required(neuro_client: Client, idp: OidcDouble) -> None:
    _configure(idp, required_for_staff=True)
    response = neuro_client.post(
        "/accounts/login/", {"login": "coordinator@neuro.example.com", "password": DEMO_PASSWORD}, follow=True
    )
    assert escape(SSO_REQUIRED.format(name="Neuro Hospital account")) in response.content.decode()
    assert not _signed_in(neuro_client)
    # Patients keep their password.
    patient = Client(HTTP_HOST="neuro.localhost")
    patient.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": DEMO_PASSWORD})
    assert _signed_in(patient)


def test_it_offers_the_button_on_the_staff_sign_in_page_only_when_set(
    neuro_client: Client, cancer_client: Client, neuro_sso: OidcDouble
) -> None:
    page = neuro_client.get("/accounts/login/?staff=1").content.decode()
    assert "Sign in through Neuro Hospital account" in page
    assert "Sign in through" not in cancer_client.get("/accounts/login/?staff=1").content.decode()
    assert cancer_client.post(LOGIN_URL, {"process": "login"}).status_code == 404


def test_it_stores_the_client_secret_encrypted(neuro_sso: OidcDouble) -> None:
    with schema_context("neuro"):
        stored = SingleSignOn.objects.get().client_secret_encrypted
    assert CLIENT_SECRET not in stored and stored.startswith("fernet:")


def test_it_refuses_an_issuer_whose_discovery_names_another(neuro_client: Client, idp: OidcDouble) -> None:
    staff_force_login(neuro_client, "admin@neuro.example.com")
    response = neuro_client.post(
        "/settings/sign-in/",
        {"issuer": idp.issuer + "/", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "enabled": "on"},
    )
    assert response.status_code == 400
    assert escape(ISSUER_MISMATCH.split("(")[0]) in response.content.decode()
    with schema_context("neuro"):
        assert not SingleSignOn.objects.exists()


def test_it_lets_the_admin_set_it_up(neuro_client: Client, idp: OidcDouble) -> None:
    staff_force_login(neuro_client, "admin@neuro.example.com")
    response = neuro_client.post(
        "/settings/sign-in/",
        {
            "issuer": idp.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "display_name": "Neuro Hospital account",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    page = neuro_client.get("/settings/sign-in/").content.decode()
    assert idp.issuer in page and CLIENT_SECRET not in page


@pytest.mark.parametrize("email", ["coordinator@neuro.example.com", "patient@neuro.example.com"])
def test_it_keeps_the_settings_page_to_the_admin(neuro_client: Client, email: str) -> None:
    staff_force_login(neuro_client, email)
    assert neuro_client.get("/settings/sign-in/").status_code == 403
    assert neuro_client.post("/settings/sign-in/remove").status_code == 403


def test_it_sends_signed_out_visitors_to_sign_in(neuro_client: Client) -> None:
    response = neuro_client.get("/settings/sign-in/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
