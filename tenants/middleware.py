"""Routing each request to its institution, and stopping requests to institutions that are
not live."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

from tenants.models import Domain, Institution
from tenants.prepared import PreparedSelect
from tenants.schema import activate_public
from tenants.timezones import institution_time_zone_activate

TLS_ASK_PATH = "/tls/ask"

# One-to-one rows of an institution that (nearly) every page of its site reads, fetched in the
# same query as its domain: its service settings (turnaround), and what higher layers register
# at start-up (``institution_join_register``; branding: the brand). Each saves a query per page.
_INSTITUTION_JOINS: list[str] = ["service_settings"]


def institution_join_register(relation: str) -> None:
    """Fetch ``Institution.<relation>`` (a one-to-one reverse relation) with every request's
    institution. Called from an ``AppConfig.ready``."""
    if relation not in _INSTITUTION_JOINS:
        _INSTITUTION_JOINS.append(relation)


# The host's domain, its institution and the joined rows, one statement compiled once (per set of
# joins, which is complete once the apps are ready): every request runs it.
_DOMAIN_SELECTS: dict[tuple[str, ...], PreparedSelect[Domain]] = {}


def _domain_select(joins: tuple[str, ...]) -> PreparedSelect[Domain]:
    select = _DOMAIN_SELECTS.get(joins)
    if select is None:
        select = PreparedSelect(
            lambda host: Domain.objects.select_related("tenant", *joins).filter(domain=host)[:1],
            "host.invalid",
        )
        _DOMAIN_SELECTS[joins] = select
    return select


# RFC 1123 host names, lower-cased, with an optional port: anything else is refused before
# it reaches the database.
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$"
)


class InstitutionMiddleware(TenantMainMiddleware):
    """django-tenants' host → schema routing, and our host validation.

    Because ALLOWED_HOSTS is open (custom domains arrive at run time), this is the check that
    refuses every host that is not a Domain row: such requests get the platform's 404 page.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        # The reverse proxy asks about TLS certificates with its own Host header (e.g.
        # "web:8000"), which is no Domain row: that one path is answered by the platform.
        if request.path == TLS_ASK_PATH:
            activate_public()
            self.setup_url_routing(request, force_public=True)
            return None
        response: HttpResponse | None = super().process_request(request)
        return response

    def get_tenant(self, domain_model: type[Domain], hostname: str) -> Institution:
        domain = _domain_select(tuple(f"tenant__{relation}" for relation in _INSTITUTION_JOINS)).first(
            hostname
        )
        if domain is None:
            raise domain_model.DoesNotExist
        return domain.tenant

    @staticmethod
    def hostname_from_request(request: HttpRequest) -> str:
        host = (request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")).strip().lower()
        if not _HOST_RE.match(host):
            return "invalid.host.invalid"
        return host.split(":")[0].removeprefix("www.")


class InstitutionStatusMiddleware:
    """Shows a clear page instead of the portal when an institution is pending or suspended.

    Operators work from the platform's own domain, which is never blocked; health checks
    stay reachable so orchestrators do not restart a healthy pod.
    """

    ALWAYS_OPEN = ("/healthz", "/static/")
    # A pending institution's own staff set up and preview everything; to reach that, anyone
    # may sign in (and accept an invitation). Patients see "not open yet" until approval.
    PENDING_OPEN = ("/accounts/login/", "/accounts/logout/", "/accounts/2fa/", "/accounts/password/reset/",
                    "/accounts/reauthenticate/", "/invitations/", "/brand/")  # fmt: skip

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        institution = getattr(request, "tenant", None)
        if (
            isinstance(institution, Institution)
            and not institution.is_public
            and institution.status != Institution.Status.ACTIVE
            and not request.path.startswith(self.ALWAYS_OPEN)
            and not (institution.status == Institution.Status.PENDING and _pending_preview(request))
        ):
            template = (
                "tenants/suspended.html"
                if institution.status == Institution.Status.SUSPENDED
                else "tenants/pending.html"
            )
            return render(request, template, {"institution": institution}, status=503)
        return self.get_response(request)


def _pending_preview(request: HttpRequest) -> bool:
    if request.path.startswith(InstitutionStatusMiddleware.PENDING_OPEN):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and getattr(user, "is_institution_staff", False))


class InstitutionTimeZoneMiddleware:
    """Shows the request's dates in its institution's time zone (after InstitutionMiddleware:
    ``request.tenant`` is set, so this costs no query). The platform's own pages stay in UTC."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        institution_time_zone_activate(getattr(request, "tenant", None))
        try:
            return self.get_response(request)
        finally:
            institution_time_zone_activate(None)
