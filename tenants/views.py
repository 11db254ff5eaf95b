"""The platform's own pages (public schema): home, and the operators' console."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.selectors import institution_list_for_operators


def unknown_host(request: HttpRequest) -> HttpResponse:
    """Any host that is not a Domain row: a plain 404 that names nobody."""
    return render(request, "unknown_host.html", status=404)


def platform_home(request: HttpRequest) -> HttpResponse:
    return render(request, "tenants/platform_home.html")


@login_required
def operator_console(request: HttpRequest) -> HttpResponse:
    if not request.user.is_operator:  # type: ignore[union-attr]
        raise PermissionDenied
    return render(
        request,
        "tenants/operator_console.html",
        {"institutions": institution_list_for_operators()},
    )
