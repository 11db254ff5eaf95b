"""Answers about hosts, before any institution's page: a host that is no institution's, and the
reverse proxy's question whether to get a TLS certificate for one."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tenants.selectors import tls_host_is_ours


def unknown_host(request: HttpRequest) -> HttpResponse:
    """Any host that is not a Domain row: a plain 404 that names nobody."""
    return render(request, "unknown_host.html", status=404)


@require_GET
def tls_ask(request: HttpRequest) -> HttpResponse:
    """Caddy's on-demand TLS asks here before getting a certificate for a host name: yes only
    for hosts we route (so nobody can make us request certificates for arbitrary names)."""
    host = request.GET.get("domain", "")
    if host and tls_host_is_ours(host=host):
        return HttpResponse("ok", content_type="text/plain")
    return HttpResponse("unknown domain", status=404, content_type="text/plain")
