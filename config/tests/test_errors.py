"""What a request gets when something on our side failed (config.errors, handler500)."""

from __future__ import annotations

import json

from django.db import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import get_resolver

from config.errors import UNAVAILABLE, server_error
from storage.base import StorageUnavailable


def _answer(error: Exception, accept: str = "text/html") -> HttpResponse:
    try:
        raise error
    except Exception:
        return server_error(RequestFactory().get("/cases/", headers={"Accept": accept}))


def test_an_unreachable_database_is_a_503_to_try_again() -> None:
    response = _answer(OperationalError("connection to server at 10.0.0.5 failed: timeout expired"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "We are briefly unavailable" in page and "10.0.0.5" not in page


def test_unavailable_storage_is_a_503_and_json_clients_get_json() -> None:
    response = _answer(StorageUnavailable("disk full"), accept="application/dicom+json")
    assert response.status_code == 503
    assert json.loads(response.content) == {"error": UNAVAILABLE}
    assert "briefly unavailable" in UNAVAILABLE and "disk" not in UNAVAILABLE


def test_any_other_failure_stays_a_500_that_says_nothing_of_the_error() -> None:
    response = _answer(ValueError("ALVAREZ^ROBERT"))
    assert response.status_code == 500
    assert "Retry-After" not in response
    page = response.content.decode()
    assert "Something went wrong on our side" in page and "ALVAREZ" not in page


def test_both_sites_use_it() -> None:
    for urlconf in ("config.urls_tenant", "config.urls_public"):
        assert get_resolver(urlconf).resolve_error_handler(500) is server_error
