"""Accounts belong to one institution: they sign in there and nowhere else."""

from __future__ import annotations

from django.test import Client

from institutions.management.commands.seed_demo import DEMO_PASSWORD
from tests.staff import staff_force_login


def _sign_in(client: Client, email: str) -> bool:
    client.post("/accounts/login/", {"login": email, "password": DEMO_PASSWORD})
    return "_auth_user_id" in client.session


def test_it_signs_a_patient_in_on_their_institution(neuro_client: Client) -> None:
    assert _sign_in(neuro_client, "patient@neuro.example.com")


def test_it_refuses_an_account_of_another_institution(cancer_client: Client) -> None:
    assert not _sign_in(cancer_client, "patient@neuro.example.com")


def test_it_refuses_institution_accounts_on_the_platform_domain(platform_client: Client) -> None:
    assert not _sign_in(platform_client, "admin@neuro.example.com")


def test_it_refuses_the_operator_on_an_institutions_domain(neuro_client: Client) -> None:
    assert not _sign_in(neuro_client, "operator@secondread.example.com")


def test_it_does_not_offer_sign_up_on_the_platform_domain(platform_client: Client) -> None:
    page = platform_client.get("/accounts/signup/").content.decode()
    assert "Sign up" not in page or "closed" in page.lower()


def test_it_lets_staff_into_the_workspace_and_keeps_patients_out(neuro_client: Client) -> None:
    staff_force_login(neuro_client, "coordinator@neuro.example.com")  # password + second factor
    assert neuro_client.get("/workspace/").status_code == 200
    patient = Client(HTTP_HOST="neuro.localhost")
    assert _sign_in(patient, "patient@neuro.example.com")
    assert patient.get("/workspace/").status_code == 403


def test_it_sends_a_logged_out_visitor_of_the_workspace_to_sign_in(neuro_client: Client) -> None:
    response = neuro_client.get("/workspace/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
