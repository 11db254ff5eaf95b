"""Routed custom domains are checked again every day against real DNS: one that no longer points
at us stops being routed at once (no dangling-domain takeover) and the admins are told; a DNS
server we cannot reach proves nothing and leaves the domain alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core import mail
from django.test import Client, override_settings

from institutions.tasks import custom_domains_recheck
from tenants.custom_domains import DNS_WRONG_CNAME, custom_domain_claim, custom_domain_verify
from tenants.models import CustomDomain, Institution
from tests.dns.server import ZoneResolver, dns_server
from tests.live import free_port
from tests.staff import staff_force_login

HOST = "secondopinion.northfield.example.org"


@pytest.fixture
def zone() -> Iterator[ZoneResolver]:
    with (
        dns_server() as (resolver, port),
        override_settings(DNS_RESOLVER_NAMESERVERS=["127.0.0.1"], DNS_RESOLVER_PORT=port),
    ):
        yield resolver


@pytest.fixture
def routed(neuro: Institution, zone: ZoneResolver) -> CustomDomain:
    claim = custom_domain_claim(institution=neuro, domain=HOST)
    zone.records[(HOST, "CNAME")] = ["localhost"]
    zone.records[(f"_secondread-verify.{HOST}", "TXT")] = [claim.token]
    custom_domain_verify(institution=neuro, claim_id=claim.pk)
    assert Client(HTTP_HOST=HOST).get("/").status_code == 200
    return claim


def test_a_domain_still_pointing_at_us_stays_routed(routed: CustomDomain) -> None:
    assert custom_domains_recheck() == 0
    routed.refresh_from_db()
    assert routed.verified is not None and routed.last_checked is not None
    assert Client(HTTP_HOST=HOST).get("/").status_code == 200
    assert mail.outbox == []


def test_a_domain_that_left_us_is_switched_off_and_the_admins_told_once(
    routed: CustomDomain, zone: ZoneResolver
) -> None:
    zone.records[(HOST, "CNAME")] = ["parked.registrar.example.net"]
    assert custom_domains_recheck() == 1
    # Not served, and no certificate for whoever holds the name now.
    assert Client(HTTP_HOST=HOST).get("/").status_code == 404
    assert Client(HTTP_HOST="web:8000").get(f"/tls/ask?domain={HOST}").status_code != 200
    routed.refresh_from_db()
    assert routed.verified is None
    assert routed.last_problem == DNS_WRONG_CNAME.format(
        domain=HOST, found="parked.registrar.example.net", target="localhost"
    )
    [notice] = mail.outbox
    assert notice.to == ["admin@neuro.example.com"]
    assert HOST in notice.subject
    assert "parked.registrar.example.net" in notice.body
    assert "/settings/domains/" in notice.body
    assert "&amp;" not in notice.body and "&#x27;" not in notice.body
    # The next day's run changes nothing and emails no one again.
    assert custom_domains_recheck() == 0
    assert len(mail.outbox) == 1
    # The settings page says what is wrong, with the records to set again.
    admin = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(admin, "admin@neuro.example.com")
    page = admin.get("/settings/domains/").content.decode()
    assert "Not verified yet" in page and "parked.registrar.example.net" in page


def test_an_unreachable_dns_server_leaves_the_domain_alone(routed: CustomDomain) -> None:
    # Nothing listens there: a short deadline gives the same answer as the usual one, sooner.
    unreachable = override_settings(
        DNS_RESOLVER_NAMESERVERS=["127.0.0.1"], DNS_RESOLVER_PORT=free_port(), DNS_RESOLVER_LIFETIME=0.2
    )
    with unreachable:
        assert custom_domains_recheck() == 0
    routed.refresh_from_db()
    assert routed.verified is not None
    assert Client(HTTP_HOST=HOST).get("/").status_code == 200
    assert mail.outbox == []
