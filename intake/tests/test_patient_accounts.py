"""Patients create their own account on the institution's domain, verify their email (a
branded email in the institution's name), sign in and reset their password."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from intake import signup
from intake.models import Case
from tenants.models import Institution

SIGN_UP = {
    "full_name": "Robin Relative",
    "email": "robin@family.example.com",
    "submitter_relation": "family",
    "password1": "a calm long passphrase",
    "password2": "a calm long passphrase",
}


def _link(body: object) -> str:
    match = re.search(r"http://[^\s]+", str(body))
    assert match, body
    return match.group(0)


def test_it_signs_up_a_patient_with_their_name_and_who_they_act_for(
    neuro: Institution, neuro_client: Client
) -> None:
    response = neuro_client.post("/accounts/signup/", SIGN_UP)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    with tenant_context(neuro):
        user = User.objects.get(email="robin@family.example.com")
        assert user.full_name == "Robin Relative"
        assert not user.is_institution_staff and not user.is_staff and not user.is_superuser
        case = Case.objects.get(owner=user)
    assert case.submitter_relation == Case.Relation.FAMILY
    assert case.submitter_name == "Robin Relative"
    assert case.patient_name == ""  # they act for someone else: the patient's name comes in step 1


def test_it_sends_a_branded_verification_email_that_signs_the_patient_in(
    neuro: Institution, neuro_client: Client
) -> None:
    neuro_client.post("/accounts/signup/", SIGN_UP)
    (email,) = mail.outbox
    assert email.subject == "Confirm your email address for Northfield Neurological Institute"
    assert "Hello Robin Relative" in email.body
    html = email.alternatives[0][0]  # type: ignore[attr-defined]
    assert "Northfield Neurological Institute" in html and "#4b2e83" in html
    link = _link(email.body)
    assert link.startswith("http://neuro.localhost")
    path = link.split("neuro.localhost", 1)[1].split("/", 1)[1]
    page = neuro_client.get(f"/{path}")
    assert "Confirm my email address" in page.content.decode()
    neuro_client.post(f"/{path}")
    assert "_auth_user_id" in neuro_client.session


def test_it_explains_a_missing_name_and_creates_no_account(neuro: Institution, neuro_client: Client) -> None:
    response = neuro_client.post("/accounts/signup/", {**SIGN_UP, "full_name": ""})
    assert response.status_code == 200
    assert signup.FULL_NAME_REQUIRED in response.content.decode()
    with tenant_context(neuro):
        assert not User.objects.filter(email=SIGN_UP["email"]).exists()


def test_it_never_makes_staff_by_sign_up(neuro: Institution, neuro_client: Client) -> None:
    neuro_client.post(
        "/accounts/signup/",
        {**SIGN_UP, "is_coordinator": "on", "is_institution_admin": "on", "is_staff": "on"},
    )
    with tenant_context(neuro):
        user = User.objects.get(email=SIGN_UP["email"])
    assert not (user.is_coordinator or user.is_institution_admin or user.is_staff or user.is_reviewer)


def test_it_keeps_a_patient_of_one_institution_out_of_another(
    cancer_client: Client, neuro_client: Client
) -> None:
    neuro_client.post("/accounts/signup/", SIGN_UP)
    cancer_client.post("/accounts/login/", {"login": SIGN_UP["email"], "password": SIGN_UP["password1"]})
    assert "_auth_user_id" not in cancer_client.session


def test_it_shows_the_account_pages_in_the_institutions_look(neuro_client: Client) -> None:
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        page = neuro_client.get(path).content.decode()
        assert 'data-testid="institution-name">Northfield Neurological Institute' in page, path
        assert "css/intake.css" in page, path
    assert "Who is the second opinion for?" in neuro_client.get("/accounts/signup/").content.decode()


def test_it_sends_a_branded_password_reset_email(neuro: Institution, neuro_client: Client) -> None:
    response = neuro_client.post("/accounts/password/reset/", {"email": "patient@neuro.example.com"})
    assert response.status_code == 302
    (email,) = mail.outbox
    assert email.subject == "Reset your password for Northfield Neurological Institute"
    assert "#4b2e83" in email.alternatives[0][0]  # type: ignore[attr-defined]
    link = _link(email.body)
    page = neuro_client.get(link.split("neuro.localhost", 1)[1], follow=True)
    assert "Choose a new password" in page.content.decode()
