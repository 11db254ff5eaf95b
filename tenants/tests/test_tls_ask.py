"""The reverse proxy asks before getting a certificate: yes only for hosts we route."""

from __future__ import annotations

from django.test import Client

from tenants.models import CustomDomain, Institution


def test_it_approves_platform_subdomains_of_live_institutions(neuro: Institution) -> None:
    # Caddy calls with its own Host header (the web service's name), which is no Domain row.
    client = Client(HTTP_HOST="web:8000")
    assert client.get("/tls/ask?domain=neuro.localhost").status_code == 200
    assert client.get("/tls/ask?domain=nosuch.localhost").status_code == 404
    assert client.get("/tls/ask").status_code == 404


def test_it_approves_a_custom_domain_only_once_verified(neuro: Institution) -> None:
    from tenants.models import Domain

    claim = CustomDomain.objects.create(institution=neuro, domain="secondopinion.northfield.example.org")
    client = Client(HTTP_HOST="web:8000")
    assert client.get(f"/tls/ask?domain={claim.domain}").status_code == 404
    Domain.objects.create(domain=claim.domain, tenant=neuro, is_primary=False)
    assert client.get(f"/tls/ask?domain={claim.domain}").status_code == 200


def test_it_does_not_open_other_paths_to_unknown_hosts(db: None) -> None:
    assert Client(HTTP_HOST="web:8000").get("/operators/").status_code == 404
