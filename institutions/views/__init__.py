"""The platform's own pages (public schema), one module per area: ``onboarding`` (the sign-up
wizard), ``operators`` (the console), ``invitations`` (accepting one, on an institution's domain);
the platform's home page is here. (The answers about hosts, unknown ones and the reverse proxy's
TLS question, are tenants.views.)

The names below are what the URLconfs in ``config/`` and ``institutions/urls.py`` use.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from institutions.views.invitations import invitation_accept_view
from institutions.views.onboarding import (
    onboarding_logo,
    onboarding_progress,
    onboarding_resume,
    onboarding_sign_in,
    onboarding_sign_out,
    onboarding_start,
    onboarding_step,
    onboarding_subdomain_check,
    onboarding_verify,
)
from institutions.views.onboarding_payment import onboarding_stripe_connect, onboarding_stripe_return
from institutions.views.operators import operator_console, operator_institution_action, operator_usage_refresh

__all__ = [
    "invitation_accept_view",
    "onboarding_logo",
    "onboarding_progress",
    "onboarding_resume",
    "onboarding_sign_in",
    "onboarding_sign_out",
    "onboarding_start",
    "onboarding_step",
    "onboarding_stripe_connect",
    "onboarding_stripe_return",
    "onboarding_subdomain_check",
    "onboarding_verify",
    "operator_console",
    "operator_institution_action",
    "operator_usage_refresh",
    "platform_home",
]


def platform_home(request: HttpRequest) -> HttpResponse:
    return render(request, "institutions/platform_home.html")
