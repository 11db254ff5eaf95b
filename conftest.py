"""Fixtures for every test: the test database holds the demo platform (an operator, two
institutions, their staff and patients), created once per session and committed, because
real workers and the browser tests' live server run in other processes and must see it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from institutions.provisioning import tenant_template_ensure
from tenants.models import Institution
from tenants.schema import activate_public
from tests.migrated_database import migrated_copy_keep, migrated_copy_restore, test_database_drop

# Live server, real Celery worker and Chromium fixtures, for any test in any app.
pytest_plugins = ["tests.live", "tests.cases", "tests.outbox"]

# Playwright's sync API keeps an event loop running in the test thread; Django would take every
# ORM call made beside it for one made from async code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# Fixtures that need the test database without a test marked ``django_db`` (pytest-django only
# creates the test database when a collected test asks for it).
NEEDS_TEST_DATABASE = {"live_platform", "celery_worker_process"}


# Tests that start real servers or peers (a live server, a Celery worker, Chromium, Caddy,
# PgBouncer, gunicorn, Orthanc) are marked ``slow`` here, so `./sr test -m "not slow"` is the quick
# loop without anyone remembering the marker. Modules that start one without these fixtures mark
# themselves (``pytestmark = pytest.mark.slow``), as do modules that build, migrate or move whole
# schemas, and tests that start another Python process of the app (settings loaded afresh,
# manage.py, the liveness probe: each pays Django's start-up, about a second of CPU, outside the
# test process). The rule is what a test does, never how long it took once; the quick loop
# (``./sr test --quick``) still runs tests of every app.
SLOW_FIXTURES = {"live_platform", "celery_worker_process", "browser", "page", "behind_caddy", "pgbouncer"}
SLOW_MARKERS = {"browser", "worker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if NEEDS_TEST_DATABASE & fixtures:
            item.add_marker(pytest.mark.django_db)
        if SLOW_FIXTURES & fixtures or any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)


def _test_database_name() -> str:
    return str(settings.DATABASES["default"]["TEST"]["NAME"])


@pytest.fixture(scope="session")
def django_db_keepdb(request: pytest.FixtureRequest, django_db_blocker: pytest.FixtureRequest) -> bool:
    """Whether the test database was made from a kept migrated copy (tests.migrated_database):
    pytest-django then only checks its migrations instead of creating and migrating it."""
    assert _test_database_name().startswith("test_"), "not a test database"
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        return migrated_copy_restore(_test_database_name())


@pytest.fixture(scope="session")
def django_db_setup(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest, django_db_keepdb: bool
) -> Iterator[None]:
    # Never seed (or wipe the files of) anything but a database pytest-django created.
    assert str(settings.DATABASES["default"]["NAME"]).startswith("test_"), "not a test database"
    assert settings.SETTINGS_MODULE == "config.settings.test", "tests need config.settings.test"
    shutil.rmtree(settings.STORAGE_FILESYSTEM_ROOT, ignore_errors=True)
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        if not django_db_keepdb:
            # Freshly migrated: keep a copy for the next run, the template schema included.
            tenant_template_ensure()
            migrated_copy_keep(_test_database_name())
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    yield
    # Child processes (live server, workers) may still hold a connection for a moment after
    # they exit; the test database can only be dropped once they are gone.
    with django_db_blocker.unblock(), connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    if django_db_keepdb:  # pytest-django drops only a database it created itself
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            test_database_drop(_test_database_name())
    shutil.rmtree(settings.STORAGE_FILESYSTEM_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def _back_to_public_schema() -> Iterator[None]:
    yield
    activate_public()


@pytest.fixture
def neuro(db: None) -> Institution:
    return Institution.objects.get(slug="neuro")


@pytest.fixture
def cancer(db: None) -> Institution:
    return Institution.objects.get(slug="cancer")


def host_of(institution: Institution) -> str:
    return institution.domains.get(is_primary=True).domain


@pytest.fixture
def neuro_client(neuro: Institution) -> Client:
    return Client(HTTP_HOST=host_of(neuro))


@pytest.fixture
def cancer_client(cancer: Institution) -> Client:
    return Client(HTTP_HOST=host_of(cancer))


@pytest.fixture
def platform_client(db: None) -> Client:
    return Client(HTTP_HOST=settings.PLATFORM_DOMAIN)
