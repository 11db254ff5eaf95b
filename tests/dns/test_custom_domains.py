"""Custom domains are verified with real DNS queries (dnspython) against a real DNS server on
loopback (dnslib), and routed only once both records are right."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

from tenants.custom_domains import (
    DNS_NO_CNAME,
    DNS_NO_TXT,
    DNS_WRONG_CNAME,
    DOMAIN_INVALID,
    DOMAIN_IS_PLATFORM,
    DOMAIN_TAKEN,
    DomainRefused,
    custom_domain_claim,
    custom_domain_verify,
)
from tenants.models import CustomDomain, Domain, Institution
from tests.dns.server import ZoneResolver, dns_server
from tests.staff import staff_force_login

HOST = "secondopinion.northfield.example.org"


@pytest.fixture
def zone() -> Iterator[ZoneResolver]:
    with (
        dns_server() as (resolver, port),
        override_settings(DNS_RESOLVER_NAMESERVERS=["127.0.0.1"], DNS_RESOLVER_PORT=port),
    ):
        yield resolver


def _admin() -> Client:
    client = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(client, "admin@neuro.example.com")
    return client


def test_it_routes_a_domain_once_dns_shows_both_records(neuro: Institution, zone: ZoneResolver) -> None:
    admin = _admin()
    admin.post("/settings/domains/", {"action": "add", "domain": HOST.upper() + "."})
    claim = CustomDomain.objects.get(institution=neuro, domain=HOST)
    page = admin.get("/settings/domains/").content.decode()
    assert claim.token in page and f"_secondread-verify.{HOST}" in page

    # nothing in DNS yet
    response = admin.post("/settings/domains/", {"action": "verify", "claim": claim.pk}, follow=True)
    assert DNS_NO_CNAME.format(domain=HOST, target="localhost") in response.content.decode()
    assert Client(HTTP_HOST=HOST).get("/").status_code == 404

    zone.records[(HOST, "CNAME")] = ["elsewhere.example.net"]
    response = admin.post("/settings/domains/", {"action": "verify", "claim": claim.pk}, follow=True)
    assert DNS_WRONG_CNAME.format(domain=HOST, found="elsewhere.example.net", target="localhost") in (
        response.content.decode()
    )

    zone.records[(HOST, "CNAME")] = ["localhost"]
    zone.records[(f"_secondread-verify.{HOST}", "TXT")] = ["not-the-token"]
    response = admin.post("/settings/domains/", {"action": "verify", "claim": claim.pk}, follow=True)
    assert DNS_NO_TXT.format(name=f"_secondread-verify.{HOST}") in response.content.decode()
    assert not Domain.objects.filter(domain=HOST).exists()

    zone.records[(f"_secondread-verify.{HOST}", "TXT")] = ["something-else", claim.token]
    response = admin.post("/settings/domains/", {"action": "verify", "claim": claim.pk}, follow=True)
    assert "is verified and now serves your portal" in response.content.decode()
    assert (HOST, "TXT") not in zone.questions  # we asked the right names
    assert (f"_secondread-verify.{HOST}", "TXT") in zone.questions
    page = Client(HTTP_HOST=HOST).get("/").content.decode()
    assert "Northfield Neurological Institute" in page
    assert Client(HTTP_HOST="web:8000").get(f"/tls/ask?domain={HOST}").status_code == 200

    # removing it stops the routing
    admin.post("/settings/domains/", {"action": "remove", "claim": claim.pk})
    assert Client(HTTP_HOST=HOST).get("/").status_code == 404


def test_it_refuses_a_domain_another_institution_uses(
    neuro: Institution, cancer: Institution, zone: ZoneResolver
) -> None:
    Domain.objects.create(domain=HOST, tenant=cancer, is_primary=False)
    page = _admin().post("/settings/domains/", {"action": "add", "domain": HOST}).content.decode()
    assert DOMAIN_TAKEN in page
    assert not CustomDomain.objects.filter(institution=neuro).exists()


def test_it_refuses_a_verification_when_another_institution_got_there_first(
    neuro: Institution, cancer: Institution, zone: ZoneResolver
) -> None:
    claim = custom_domain_claim(institution=neuro, domain=HOST)
    zone.records[(HOST, "CNAME")] = ["localhost"]
    zone.records[(f"_secondread-verify.{HOST}", "TXT")] = [claim.token]
    Domain.objects.create(domain=HOST, tenant=cancer, is_primary=False)
    with pytest.raises(DomainRefused, match=DOMAIN_TAKEN):
        custom_domain_verify(institution=neuro, claim_id=claim.pk)
    assert Domain.objects.get(domain=HOST).tenant == cancer


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://secondopinion.example.org/path", DOMAIN_INVALID),
        ("not a domain", DOMAIN_INVALID),
        ("cancer.localhost", DOMAIN_IS_PLATFORM),
        ("localhost", DOMAIN_INVALID),
    ],
)
def test_it_refuses_what_is_not_an_institutions_domain(neuro: Institution, value: str, message: str) -> None:
    with pytest.raises(DomainRefused, match=message.split(" (")[0][:30]):
        custom_domain_claim(institution=neuro, domain=value)


def test_it_refuses_other_people_and_institutions(neuro: Institution, cancer: Institution) -> None:
    claim = custom_domain_claim(institution=neuro, domain=HOST)
    # the cancer centre's admin cannot verify or remove neuro's claim
    cancer_admin = Client(HTTP_HOST="cancer.localhost")
    staff_force_login(cancer_admin, "admin@cancer.example.com")
    assert cancer_admin.post("/settings/domains/", {"action": "remove", "claim": claim.pk}).status_code == 404
    coordinator = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(coordinator, "coordinator@neuro.example.com")
    assert coordinator.post("/settings/domains/", {"action": "remove", "claim": claim.pk}).status_code == 403
    assert CustomDomain.objects.filter(pk=claim.pk).exists()


def test_it_says_so_when_dns_cannot_be_reached(neuro: Institution) -> None:
    from tests.dns.server import free_udp_port

    claim = custom_domain_claim(institution=neuro, domain=HOST)
    # Nothing listens there: a short deadline gives the same answer as the usual one, sooner.
    unreachable = override_settings(
        DNS_RESOLVER_NAMESERVERS=["127.0.0.1"], DNS_RESOLVER_PORT=free_udp_port(), DNS_RESOLVER_LIFETIME=0.2
    )
    with unreachable, pytest.raises(DomainRefused, match="could not reach the DNS servers"):
        custom_domain_verify(institution=neuro, claim_id=claim.pk)
