"""An institution's own domains: claim, verify with real DNS queries, route, remove.

A claimed domain is routed (gets a ``Domain`` row, and with it TLS through the ``/tls/ask``
endpoint) only once DNS shows both records we asked for:

- ``<domain>  CNAME  <CUSTOM_DOMAIN_CNAME_TARGET>``  (traffic reaches us);
- ``_secondread-verify.<domain>  TXT  "<token>"``    (whoever controls the zone agreed).
"""

from __future__ import annotations

import re

import dns.exception
import dns.resolver
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.models import CustomDomain, Domain, Institution

VERIFY_PREFIX = "_secondread-verify"

DOMAIN_INVALID = "Enter a domain name such as secondopinion.hospital.org (no http://, no path)."
DOMAIN_IS_PLATFORM = "This is one of our own addresses; enter a domain of your institution."
DOMAIN_TAKEN = "This domain is already used by another institution."
DOMAIN_ALREADY_ADDED = "You have already added this domain."
DNS_NO_CNAME = "We found no CNAME record for {domain} pointing to {target}."
DNS_WRONG_CNAME = "{domain} points to {found}, not to {target}."
DNS_NO_TXT = "We found no TXT record {name} with your verification code."
DNS_UNREACHABLE = "We could not reach the DNS servers just now. Please try again in a few minutes."
DOMAIN_VERIFIED = "{domain} is verified and now serves your portal."
DOMAIN_DISABLED = (
    "{domain} stopped pointing to us on {date}, so we no longer serve your portal there. {problem}"
)

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^(?=.{{4,253}}$){_LABEL}(\.{_LABEL})*\.[a-z]{{2,63}}$")


class DomainRefused(ValueError):
    pass


def domain_normalise(value: str) -> str:
    return value.strip().lower().rstrip(".")


def custom_domain_claim(*, institution: Institution, domain: str) -> CustomDomain:
    domain = domain_normalise(domain)
    if not _DOMAIN_RE.match(domain):
        raise DomainRefused(DOMAIN_INVALID)
    platform = settings.PLATFORM_DOMAIN
    if domain == platform or domain.endswith("." + platform) or domain == settings.CUSTOM_DOMAIN_CNAME_TARGET:
        raise DomainRefused(DOMAIN_IS_PLATFORM)
    if Domain.objects.filter(domain=domain).exclude(tenant=institution).exists() or (
        CustomDomain.objects.filter(domain=domain, verified__isnull=False)
        .exclude(institution=institution)
        .exists()
    ):
        raise DomainRefused(DOMAIN_TAKEN)
    try:
        with transaction.atomic():
            return CustomDomain.objects.create(institution=institution, domain=domain)
    except IntegrityError as exc:
        raise DomainRefused(DOMAIN_ALREADY_ADDED) from exc


def _resolver() -> dns.resolver.Resolver:
    if settings.DNS_RESOLVER_NAMESERVERS:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(settings.DNS_RESOLVER_NAMESERVERS)
        resolver.port = settings.DNS_RESOLVER_PORT
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = settings.DNS_RESOLVER_LIFETIME
    resolver.timeout = min(2.0, settings.DNS_RESOLVER_LIFETIME)
    # A verification must see the zone as it is now, not an answer cached before the admin
    # created the records.
    resolver.cache = None
    return resolver


def _dns_problem(*, claim: CustomDomain) -> str | None:
    """What is missing in DNS for ``claim``, or None when both records are right."""
    resolver = _resolver()
    target = settings.CUSTOM_DOMAIN_CNAME_TARGET
    try:
        try:
            answer = resolver.resolve(claim.domain, "CNAME")
            found = [str(record.target).lower().rstrip(".") for record in answer]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            found = []
        if not found:
            return DNS_NO_CNAME.format(domain=claim.domain, target=target)
        if target not in found:
            return DNS_WRONG_CNAME.format(domain=claim.domain, found=", ".join(found), target=target)
        txt_name = f"{VERIFY_PREFIX}.{claim.domain}"
        try:
            answer = resolver.resolve(txt_name, "TXT")
            values = {b"".join(record.strings).decode("ascii", "replace").strip() for record in answer}
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            values = set()
        if claim.token not in values:
            return DNS_NO_TXT.format(name=txt_name)
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout):
        return DNS_UNREACHABLE
    return None


def custom_domain_verify(*, institution: Institution, claim_id: int) -> CustomDomain:
    """Check DNS now; on success route the domain to the institution (a Domain row).

    Raises DomainRefused with the reason shown to the admin, which is also kept on the claim.
    """
    claim = CustomDomain.objects.get(pk=claim_id, institution=institution)
    if claim.verified is not None:
        return claim
    problem = _dns_problem(claim=claim)
    now = timezone.now()
    if problem is None and Domain.objects.filter(domain=claim.domain).exclude(tenant=institution).exists():
        problem = DOMAIN_TAKEN
    if problem is not None:
        CustomDomain.objects.filter(pk=claim.pk).update(last_checked=now, last_problem=problem)
        raise DomainRefused(problem)
    try:
        with transaction.atomic():
            claim.verified = now
            claim.last_checked = now
            claim.last_problem = ""
            claim.save(update_fields=["verified", "last_checked", "last_problem"])
            Domain.objects.create(domain=claim.domain, tenant=institution, is_primary=False)
    except IntegrityError as exc:  # another institution verified it at the same moment
        raise DomainRefused(DOMAIN_TAKEN) from exc
    return claim


def custom_domain_recheck(*, claim: CustomDomain) -> str | None:
    """Check a verified domain's DNS again; if it no longer points at us (or its TXT record is
    gone), stop routing it at once and return why. A DNS server we cannot reach proves nothing:
    the domain stays, the problem is noted and the next check decides.

    A domain that moved away must not stay routed: whoever takes the name over could otherwise
    get a certificate for it from us and serve pages under the institution's name.
    """
    problem = _dns_problem(claim=claim)
    now = timezone.now()
    if problem is None or problem == DNS_UNREACHABLE:
        CustomDomain.objects.filter(pk=claim.pk).update(last_checked=now, last_problem=problem or "")
        return None
    with transaction.atomic():
        disabled = CustomDomain.objects.filter(pk=claim.pk, verified__isnull=False).update(
            verified=None, last_checked=now, last_problem=problem
        )
        if not disabled:  # someone removed or re-checked it meanwhile
            return None
        Domain.objects.filter(domain=claim.domain, tenant_id=claim.institution_id, is_primary=False).delete()
    return problem


def custom_domains_verified(*, after_id: int = 0, limit: int = 200) -> list[CustomDomain]:
    """The next batch of routed custom domains, in id order, with their institutions."""
    return list(
        CustomDomain.objects.filter(verified__isnull=False, pk__gt=after_id)
        .select_related("institution")
        .order_by("pk")[:limit]
    )


def custom_domain_remove(*, institution: Institution, claim_id: int) -> None:
    with transaction.atomic():
        claim = CustomDomain.objects.filter(pk=claim_id, institution=institution).first()
        if claim is None:
            return
        Domain.objects.filter(domain=claim.domain, tenant=institution, is_primary=False).delete()
        claim.delete()
