"""Admins find the DICOM gateway's AE title, host and port on the PACS settings page, to set up
their PACS; nobody else sees that page."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from tenants.models import Institution
from tests.staff import staff_force_login

pytestmark = pytest.mark.django_db


def _client(email: str, host: str = "neuro.localhost") -> Client:
    client = Client(HTTP_HOST=host)
    staff_force_login(client, email)
    return client


def test_it_shows_the_admin_their_ae_title_host_and_port(
    neuro: Institution, settings: SettingsWrapper
) -> None:
    settings.DICOM_GATEWAY_HOST = "dicom.secondread.example.com"
    settings.DICOM_GATEWAY_PORT = 11113
    page = _client("admin@neuro.example.com").get("/settings/pacs/").content.decode()
    assert '<code data-testid="gateway-ae">NEURO</code>' in page
    assert '<code data-testid="gateway-host">dicom.secondread.example.com</code>' in page
    assert '<code data-testid="gateway-port">11113</code>' in page
    assert "DICOM-INBOX" in page


def test_each_institution_sees_its_own_ae_title(cancer: Institution, settings: SettingsWrapper) -> None:
    settings.DICOM_GATEWAY_HOST = "dicom.secondread.example.com"
    page = (
        _client("admin@cancer.example.com", host="cancer.localhost").get("/settings/pacs/").content.decode()
    )
    assert '<code data-testid="gateway-ae">CANCER</code>' in page and ">NEURO<" not in page


def test_without_a_gateway_it_says_so(neuro: Institution, settings: SettingsWrapper) -> None:
    settings.DICOM_GATEWAY_HOST = ""
    page = _client("admin@neuro.example.com").get("/settings/pacs/").content.decode()
    assert 'data-testid="dicom-gateway-off"' in page and 'data-testid="gateway-host"' not in page


def test_it_refuses_everyone_but_the_admin(neuro: Institution, settings: SettingsWrapper) -> None:
    settings.DICOM_GATEWAY_HOST = "dicom.secondread.example.com"
    for email in (
        "coordinator@neuro.example.com",
        "reviewer1@neuro.example.com",
        "patient@neuro.example.com",
    ):
        assert _client(email).get("/settings/pacs/").status_code == 403
    response = Client(HTTP_HOST="neuro.localhost").get("/settings/pacs/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
