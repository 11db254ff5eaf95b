"""The same URL on two institutions' hosts shows only that institution; hosts that are not
ours get a 404; statuses stop the portal."""

from __future__ import annotations

from django.test import Client

from institutions.services import institution_set_status
from tenants.models import Institution


def test_it_shows_each_institution_its_own_portal(neuro_client: Client, cancer_client: Client) -> None:
    neuro_page = neuro_client.get("/").content.decode()
    cancer_page = cancer_client.get("/").content.decode()
    assert "Northfield Neurological Institute" in neuro_page
    assert "Lakeside Cancer Center" not in neuro_page
    assert "Lakeside Cancer Center" in cancer_page
    assert "Northfield Neurological Institute" not in cancer_page


def test_it_uses_each_institutions_colours(neuro_client: Client, cancer_client: Client) -> None:
    assert "--brand-primary:#4b2e83" in neuro_client.get("/").content.decode()
    assert "--brand-primary:#0b5e55" in cancer_client.get("/").content.decode()


def test_it_serves_the_platform_site_on_the_platform_domain(platform_client: Client) -> None:
    page = platform_client.get("/").content.decode()
    assert "Your own second-opinion service" in page
    assert "Northfield" not in page


def test_it_answers_an_unknown_host_with_a_404_page(db: None) -> None:
    response = Client(HTTP_HOST="nobody.localhost").get("/")
    assert response.status_code == 404
    assert "There is no second-opinion service at this address" in response.content.decode()


def test_it_refuses_a_malformed_host(db: None) -> None:
    response = Client(HTTP_HOST="bad_host!.localhost").get("/")
    assert response.status_code == 404


def test_it_shows_a_clear_page_for_a_suspended_institution(neuro: Institution, neuro_client: Client) -> None:
    institution_set_status(institution=neuro, status=Institution.Status.SUSPENDED)
    response = neuro_client.get("/")
    assert response.status_code == 503
    assert "temporarily unavailable" in response.content.decode()
    # the sign-in page is blocked too: nobody reaches patient data
    assert neuro_client.get("/accounts/login/").status_code == 503


def test_it_shows_a_coming_soon_page_for_a_pending_institution(
    neuro: Institution, neuro_client: Client
) -> None:
    institution_set_status(institution=neuro, status=Institution.Status.PENDING)
    response = neuro_client.get("/")
    assert response.status_code == 503
    assert "not open yet" in response.content.decode()


def test_it_keeps_health_checks_open_for_a_suspended_institution(
    neuro: Institution, neuro_client: Client
) -> None:
    institution_set_status(institution=neuro, status=Institution.Status.SUSPENDED)
    assert neuro_client.get("/healthz").status_code == 200
