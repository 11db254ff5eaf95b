"""Look-alike institutions: names and subdomains confusable with an existing institution's, and
markup in names, are refused."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.lookalike import (
    NAME_HAS_MARKUP,
    NAME_LOOKS_LIKE_ANOTHER,
    SUBDOMAIN_LOOKS_LIKE_ANOTHER,
    looks_alike,
)
from tenants.models import Institution
from tenants.subdomains import subdomain_problem

PASSWORD = "a-long-Passphrase-42"


@pytest.mark.parametrize(
    "name",
    [
        "Lakeside Cancer Center",
        "LAKESIDE CANCER CENTER",
        "Lakeside Cancer-Center.",
        "Lakesіde Cancer Center",  # Cyrillic і
        "Lakeside Cancer Cent3r",
        "Lakeside Cancer Centre",
        "Lakeside Cancer",
    ],
)
def test_it_refuses_names_confusable_with_an_existing_institution(cancer: Institution, name: str) -> None:
    from institutions.forms import SignUpForm

    form = SignUpForm(
        {"institution_name": name, "full_name": "X", "email": "x@example.org",
         "password1": "a-long-Passphrase-42", "password2": "a-long-Passphrase-42"}
    )  # fmt: skip
    assert not form.is_valid()
    assert form.errors["institution_name"] == [NAME_LOOKS_LIKE_ANOTHER]


def test_it_refuses_markup_in_names(db: None) -> None:
    from institutions.forms import SignUpForm

    form = SignUpForm(
        {"institution_name": "St Anne <b>x</b>", "full_name": "X", "email": "x@example.org",
         "password1": "a-long-Passphrase-42", "password2": "a-long-Passphrase-42"}
    )  # fmt: skip
    assert not form.is_valid() and form.errors["institution_name"] == [NAME_HAS_MARKUP]


@pytest.mark.parametrize("slug", ["lakeside-cancer", "cancer1", "canccer", "lakesidecancercenter", "neur0"])
def test_it_refuses_subdomains_confusable_with_an_existing_one(cancer: Institution, slug: str) -> None:
    assert subdomain_problem(slug=slug) == SUBDOMAIN_LOOKS_LIKE_ANOTHER


def test_it_still_allows_distinct_names(db: None) -> None:
    assert subdomain_problem(slug="stmary-boston") is None
    assert not looks_alike("St Mary's Hospital", "Lakeside Cancer Center")
    assert not looks_alike("Northgate Imaging", "Northfield Neurological Institute")


def test_the_wizard_refuses_a_lookalike_name(platform_client: Client) -> None:
    page = platform_client.post(
        "/start/",
        {"institution_name": "Lakeside Cancer Center <b>x</b>", "full_name": "Eve",
         "email": "eve@example.org", "password1": PASSWORD, "password2": PASSWORD},
    ).content.decode()  # fmt: skip
    assert "Check your email" not in page
