"""The client's address when SecondRead runs behind reverse proxies.

``X-Forwarded-For`` is only believed when the connection comes from a proxy listed in the
``TRUSTED_PROXIES`` setting (IP addresses or networks, from the environment). The header is read
from the right: each hop a trusted proxy appended is skipped, and the first address not of a
trusted proxy is the client. Anyone else's ``X-Forwarded-For`` is ignored, so a client cannot
choose the address that rate limits, audit records and logs see. A malformed header is ignored
too (the connection's own address is used), never an error.

``ClientAddressMiddleware`` puts the result in ``REMOTE_ADDR`` first thing, so everything after
it (allauth's rate limits, the audit log, Django) sees the client, not the proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A proxy adds at most one hop; more than this many is not a header a real chain produces.
MAX_FORWARDED_HOPS = 20


@cache
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in network for network in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    """The address of the client that made ``request`` (see the module docstring)."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    address = _ip(remote)
    if address is None or not _is_trusted(address):
        return remote
    header = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    if not header:
        return remote
    hops = header.split(",")
    if len(hops) > MAX_FORWARDED_HOPS:
        return remote
    parsed = [_ip(hop) for hop in hops]
    if any(hop is None for hop in parsed):
        return remote  # malformed: ignore the whole header rather than guess
    for hop in reversed(parsed):
        assert hop is not None
        if not _is_trusted(hop):
            return str(hop)
    return str(parsed[0])  # every hop is one of ours: the first is the closest to the client


class ClientAddressMiddleware:
    """Set ``REMOTE_ADDR`` to the client's address (first in MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META["REMOTE_ADDR"] = client_ip(request)
        return self.get_response(request)
