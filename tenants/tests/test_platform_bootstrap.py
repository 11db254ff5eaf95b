"""The deploy's migrate step makes the platform reachable: its tenant row and its domain."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tenants.models import Domain, Institution


def test_it_makes_the_platform_domain_answer(db: None) -> None:
    # As on a fresh database: no platform row, so the platform's host is unknown.
    Domain.objects.filter(domain=settings.PLATFORM_DOMAIN).delete()
    Institution.objects.filter(schema_name="public").delete()
    assert Client(HTTP_HOST=settings.PLATFORM_DOMAIN).get("/").status_code == 404

    call_command("platform_bootstrap", stdout=io.StringIO())

    public = Institution.objects.get(schema_name="public")
    assert public.status == Institution.Status.ACTIVE
    assert Domain.objects.get(domain=settings.PLATFORM_DOMAIN).tenant == public
    assert Client(HTTP_HOST=settings.PLATFORM_DOMAIN).get("/").status_code == 200


def test_it_changes_nothing_the_second_time(db: None) -> None:
    call_command("platform_bootstrap", stdout=io.StringIO())
    before = (Institution.objects.count(), Domain.objects.count())
    call_command("platform_bootstrap", stdout=io.StringIO())
    assert (Institution.objects.count(), Domain.objects.count()) == before
