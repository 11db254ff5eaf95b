"""Malformed query strings get a 400 with a plain message, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from config.request_checks import MALFORMED_QUERY
from tests.staff import staff_force_login

PROBES = [
    "a%0d%0ab=1",
    "%0d%0a=1",
    "PatientName%0d%0aX-Injected:%20yes=x",
    "00100010%0d%0a=x",
    "next=%0d%0aSet-Cookie:%20x=y",
    "%00=1",
]


@pytest.mark.parametrize("path", ["/dicomweb/studies", "/workspace/", "/accounts/login/", "/", "/cases/"])
def test_it_refuses_control_characters_in_query_keys_and_values(neuro: object, path: str) -> None:
    client = Client(HTTP_HOST="neuro.localhost", raise_request_exception=False)
    staff_force_login(client, "admin@neuro.example.com")
    for query in PROBES:
        response = client.get(f"{path}?{query}", HTTP_ACCEPT="application/dicom+json")
        assert response.status_code == 400, (path, query, response.status_code)
        assert response.content.decode() == MALFORMED_QUERY
        assert "X-Injected" not in response


def test_it_ignores_non_ascii_digits_in_queue_filters(neuro: object) -> None:
    client = Client(HTTP_HOST="neuro.localhost", raise_request_exception=False)
    staff_force_login(client, "coordinator@neuro.example.com")
    for query in ("reviewer=%C2%B2", "page=%C2%B2", "page=%D9%A3"):
        assert client.get(f"/workspace/?{query}").status_code == 200, query
