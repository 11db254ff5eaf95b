"""The operator console is for platform operators on the platform's domain only."""

from __future__ import annotations

from django.test import Client

from tenants.management.commands.seed_demo import DEMO_PASSWORD


def test_it_lists_institutions_for_an_operator(platform_client: Client) -> None:
    platform_client.post(
        "/accounts/login/", {"login": "operator@secondread.example.com", "password": DEMO_PASSWORD}
    )
    page = platform_client.get("/operators/").content.decode()
    assert "Northfield Neurological Institute" in page
    assert "Lakeside Cancer Center" in page


def test_it_sends_a_logged_out_visitor_to_sign_in(platform_client: Client) -> None:
    response = platform_client.get("/operators/")
    assert response.status_code == 302


def test_it_does_not_exist_on_an_institutions_domain(neuro_client: Client) -> None:
    neuro_client.post("/accounts/login/", {"login": "admin@neuro.example.com", "password": DEMO_PASSWORD})
    assert neuro_client.get("/operators/").status_code == 404
