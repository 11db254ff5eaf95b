"""Which platform subdomains an institution may take."""

from __future__ import annotations

import re

from tenants.lookalike import SUBDOMAIN_LOOKS_LIKE_ANOTHER, lookalike_of
from tenants.models import Domain, Institution
from tenants.services import platform_host

SUBDOMAIN_MIN = 3
SUBDOMAIN_MAX = 40

SUBDOMAIN_FORMAT = (
    "Use 3 to 40 lower-case letters, digits and hyphens, starting and ending with a letter or digit."
)
SUBDOMAIN_RESERVED = "This address is reserved. Please choose another."
SUBDOMAIN_TAKEN = "This address is already taken. Please choose another."
SUBDOMAIN_AVAILABLE = "This address is available."

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")

# Names people would mistake for the platform's own, names of infrastructure, and names we
# may want for the platform later.
RESERVED_SUBDOMAINS = frozenset(
    {
        "www", "admin", "administrator", "api", "app", "apps", "assets", "auth", "billing", "blog",
        "cdn", "dashboard", "demo", "dev", "docs", "email", "ftp", "help", "imap", "login", "mail",
        "media", "mx", "ns", "ns1", "ns2", "operator", "operators", "platform", "pop", "portal",
        "public", "root", "secondread", "security", "signup", "smtp", "sso", "staging", "static",
        "status", "support", "test", "tls", "webmail", "wildcard", "tenant-template",
    }
)  # fmt: skip


def subdomain_problem(*, slug: str, institution: Institution | None = None) -> str | None:
    """Why ``slug`` cannot be ``institution``'s subdomain, or None if it can.

    ``institution`` is the draft asking (its own current slug is not "taken" for it).
    """
    if not (SUBDOMAIN_MIN <= len(slug) <= SUBDOMAIN_MAX) or not _SUBDOMAIN_RE.match(slug) or "--" in slug:
        return SUBDOMAIN_FORMAT
    if slug in RESERVED_SUBDOMAINS:
        return SUBDOMAIN_RESERVED
    others = Institution.objects.filter(slug=slug)
    domains = Domain.objects.filter(domain=platform_host(slug=slug))
    if institution is not None and institution.pk:
        others = others.exclude(pk=institution.pk)
        domains = domains.exclude(tenant=institution)
    if others.exists() or domains.exists():
        return SUBDOMAIN_TAKEN
    if lookalike_of(text=slug, exclude_pk=institution.pk if institution is not None else None):
        return SUBDOMAIN_LOOKS_LIKE_ANOTHER
    return None
