"""The client's address: X-Forwarded-For counts only from trusted proxies, and a malformed one
is ignored, never an error."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory, override_settings

from config.proxy import client_ip

PROXY = "10.0.0.7"


def _ip(remote: str, forwarded: str | None = None) -> str:
    request = RequestFactory().get("/")
    request.META["REMOTE_ADDR"] = remote
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(request)


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_it_takes_the_client_from_a_trusted_proxy() -> None:
    assert _ip(PROXY, "198.51.100.4") == "198.51.100.4"
    # Whatever the client put in front of the header, the hop our proxy added wins.
    assert _ip(PROXY, "1.2.3.4, 198.51.100.4") == "198.51.100.4"
    # Several of our proxies in a row are skipped.
    assert _ip(PROXY, "198.51.100.4, 10.1.2.3") == "198.51.100.4"
    assert _ip(PROXY, "2001:db8::1") == "2001:db8::1"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_it_ignores_x_forwarded_for_from_anyone_else() -> None:
    assert _ip("203.0.113.9", "1.2.3.4") == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=[])
def test_it_trusts_no_proxy_by_default() -> None:
    assert _ip("127.0.0.1", "1.2.3.4") == "127.0.0.1"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
@pytest.mark.parametrize(
    "forwarded", ["", "not-an-ip", "1.2.3.4,,", "1.2.3.4\r\nX: y", "999.1.1.1", ",".join(["1.1.1.1"] * 50)]
)
def test_it_ignores_a_malformed_header(forwarded: str) -> None:
    assert _ip(PROXY, forwarded) == PROXY


@override_settings(TRUSTED_PROXIES=["127.0.0.1"])
def test_a_malformed_header_never_causes_an_error(neuro_client: Client) -> None:
    for forwarded in ("garbage", "1.1.1.1, ::zz", "\x00", "1.2.3.4" * 500):
        response = neuro_client.post(
            "/accounts/login/",
            {"login": "patient@neuro.example.com", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=forwarded,
        )
        assert response.status_code == 200
