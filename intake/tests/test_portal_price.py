"""Patients see the fee before they start (issue 6: the price shown before uploading)."""

from __future__ import annotations

from django.test import Client


def test_it_shows_the_fee_on_a_charging_institutions_home(cancer_client: Client) -> None:
    page = cancer_client.get("/").content.decode()
    assert 'data-testid="price-notice"' in page
    assert "$100" in page


def test_it_shows_no_fee_where_the_institution_charges_none(neuro_client: Client) -> None:
    assert 'data-testid="price-notice"' not in neuro_client.get("/").content.decode()
