"""The client's address behind trusted proxies, and only behind them."""

from __future__ import annotations

import pytest
from django.http import HttpRequest
from django.test import RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper

from config.proxy import client_ip, trusted_networks


@pytest.fixture
def behind_caddy(settings: SettingsWrapper) -> None:
    settings.TRUSTED_PROXY_NETWORKS = trusted_networks(["10.0.0.0/8", "fd00::/8"])


def _request(remote: str, forwarded: str | None = None) -> HttpRequest:
    request = RequestFactory().get("/", REMOTE_ADDR=remote)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


def test_it_takes_the_address_the_trusted_proxy_saw(behind_caddy: None) -> None:
    assert client_ip(_request("10.1.2.3", "203.0.113.7")) == "203.0.113.7"


def test_it_ignores_what_the_client_wrote_left_of_our_proxies(behind_caddy: None) -> None:
    # The client sent "X-Forwarded-For: 6.6.6.6"; a load balancer of ours appended 10.9.9.9's
    # client, then Caddy appended the load balancer: the right-most untrusted entry wins.
    request = _request("10.1.2.3", "6.6.6.6, 198.51.100.4, 10.9.9.9")
    assert client_ip(request) == "198.51.100.4"


def test_it_believes_no_header_from_an_untrusted_peer(behind_caddy: None) -> None:
    assert client_ip(_request("198.51.100.9", "203.0.113.7")) == "198.51.100.9"


def test_it_believes_no_header_without_trusted_proxies(settings: SettingsWrapper) -> None:
    settings.TRUSTED_PROXY_NETWORKS = ()
    assert client_ip(_request("127.0.0.1", "203.0.113.7")) == "127.0.0.1"


def test_it_keeps_the_proxys_address_for_garbage(behind_caddy: None) -> None:
    assert client_ip(_request("10.1.2.3", "not-an-address")) == "10.1.2.3"


def test_it_handles_ipv6(behind_caddy: None) -> None:
    assert client_ip(_request("fd00::1", "2001:db8::5")) == "2001:db8::5"


def test_it_sets_remote_addr_for_everything_after_it(
    platform_client: object, settings: SettingsWrapper
) -> None:
    from django.test import Client

    settings.TRUSTED_PROXY_NETWORKS = trusted_networks(["127.0.0.0/8"])
    client = Client(HTTP_HOST=settings.PLATFORM_DOMAIN, REMOTE_ADDR="127.0.0.1")
    response = client.get("/", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert response.wsgi_request.META["REMOTE_ADDR"] == "203.0.113.7"


def test_it_refuses_to_start_with_a_bad_cidr() -> None:
    with pytest.raises(ValueError):
        trusted_networks(["10.0.0.0/33"])
