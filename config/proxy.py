"""The client's real address behind the reverse proxy.

Caddy (and any load balancer before it) appends the address it received a request from to
``X-Forwarded-For``. Only the entries added by proxies we run can be believed; anything to their
left was written by the client. So the client's address is the right-most entry that is not one
of ``TRUSTED_PROXIES`` (CIDRs from the environment), read only when the request itself came from
a trusted proxy. With no trusted proxies (the embedded mode) the socket's address is the client.

``TrustedProxyMiddleware`` writes that address into ``REMOTE_ADDR``, so Django, allauth's rate
limits and gunicorn's access log (which reads the same WSGI environ after the response) all
see the client, not the proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(cidrs: list[str]) -> tuple[Network, ...]:
    """Parse TRUSTED_PROXIES; a bad value refuses to start (raises ValueError at settings load)."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    remote = str(request.META.get("REMOTE_ADDR", ""))
    networks: tuple[Network, ...] = settings.TRUSTED_PROXY_NETWORKS
    if not networks or not _is_trusted(remote, networks):
        return remote
    forwarded = [hop.strip() for hop in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for hop in reversed([hop for hop in forwarded if hop]):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return remote  # garbage in the header: keep the proxy's own address
    return remote


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META["REMOTE_ADDR"] = client_ip(request)
        return self.get_response(request)
