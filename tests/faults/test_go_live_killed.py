"""A go-live killed mid-way, with a real worker: the worker dies (SIGKILL) after the new
institution's schema and administrator were made, before its address was connected. The
institution is then neither live nor visited by any sweep or migration; the recovery sweep
resumes it, and a new worker takes it live exactly once (one schema, one administrator, one
address).

The worker is held at that point by a lock the test takes on the address table (the go-live
inserts its Domain row last), so the kill always lands at the same step."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from accounts.models import User
from branding.models import Brand
from institutions.onboarding import STEP_NAMES
from institutions.recovery import GO_LIVE_STALE_AFTER
from institutions.tasks import institution_go_live, onboardings_recover
from tenants.database_roles import schema_drop_as_owner
from tenants.models import Domain, Institution, InstitutionSettings, Onboarding
from tenants.selectors import institution_schemas_live
from tests.faults.processes import FAULT_QUEUE, kill, stop, worker_start
from tests.live import child_database_url, committed
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EMAIL = "ada@killed-clinic.example.org"
SLUG = "killed-clinic"


@pytest.fixture
def queued_onboarding() -> Iterator[Onboarding]:
    """A finished wizard, its go-live requested (committed: the worker is another process)."""

    def create() -> Onboarding:
        institution = Institution.objects.create(
            name="Killed Clinic", slug=SLUG, schema_name=f"inst_{secrets.token_hex(6)}", status="draft"
        )
        Brand.objects.create(institution=institution)
        InstitutionSettings.objects.create(institution=institution)
        return Onboarding.objects.create(
            email=EMAIL,
            full_name="Ada Admin",
            institution_name="Killed Clinic",
            password_hash=make_password("a-long-Passphrase-42"),
            email_verified=timezone.now(),
            institution=institution,
            completed_steps=list(STEP_NAMES[:-1]),
            state=Onboarding.State.QUEUED,
        )

    onboarding = committed(create)
    yield onboarding

    def remove() -> None:
        institution = Institution.objects.get(pk=onboarding.institution_id)
        # Live by now: only the owner's drop removes it (sr_schema_drop refuses live ones).
        schema_drop_as_owner(schema_name=institution.schema_name)
        Domain.objects.filter(tenant=institution).delete()
        Onboarding.objects.filter(pk=onboarding.pk).delete()
        institution.delete()

    committed(remove)


def test_a_go_live_killed_mid_way_is_resumed_and_goes_live_once(
    queued_onboarding: Onboarding, tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    first = worker_start(name="doomed", log=log)
    second = None
    lock = psycopg.connect(child_database_url())
    try:
        with lock.cursor() as cursor:
            cursor.execute("LOCK TABLE tenants_domain IN EXCLUSIVE MODE")  # reads pass, inserts wait
        institution_go_live.apply_async([queued_onboarding.pk], queue=FAULT_QUEUE)
        onboarding = Onboarding.objects.filter(pk=queued_onboarding.pk)
        wait_until(
            lambda: onboarding.filter(progress__gte=80).exists(),
            timeout=120,
            message="the go-live never reached its last step",
        )
        kill(first)
        lock.rollback()

        stuck = onboarding.get()
        assert stuck.institution is not None
        schema = stuck.institution.schema_name
        assert stuck.state == Onboarding.State.PROVISIONING
        assert schema_exists(schema)  # half-made: its administrator, no address
        assert stuck.institution.status == Institution.Status.DRAFT
        assert schema not in institution_schemas_live()  # no sweep or migrate goes there

        second = worker_start(name="replacement", log=log)
        # The go-live has gone quiet long enough; the recovery sweep runs in the worker, as beat
        # queues it (its go-live is queued from there: on the worker's queue, not the session's).
        quiet_since = timezone.now() - GO_LIVE_STALE_AFTER - timedelta(minutes=1)
        committed(lambda: onboarding.update(updated=quiet_since))
        onboardings_recover.apply_async(queue=f"{FAULT_QUEUE}-housekeeping")
        wait_until(
            lambda: onboarding.filter(state=Onboarding.State.LIVE, progress=100).exists(),
            timeout=120,
            message="the resumed go-live never finished",
        )
        assert onboarding.get().go_live_attempts == 2  # resumed once
        institution = Institution.objects.get(pk=stuck.institution_id)
        assert institution.status == Institution.Status.ACTIVE
        assert list(Domain.objects.filter(tenant=institution).values_list("domain", flat=True)) == [
            f"{SLUG}.localhost"
        ]
        assert schema in institution_schemas_live()

        def administrators_and_home() -> tuple[int, int]:
            # On a connection of its own: tables of the new schema read inside the test's
            # transaction would stay locked by it, and the fixture's DROP SCHEMA would wait forever.
            with schema_context(schema):
                administrators = User.objects.filter(email=EMAIL).count()
            return administrators, Client(HTTP_HOST=f"{SLUG}.localhost").get("/").status_code

        assert committed(administrators_and_home) == (1, 200)
    finally:
        print(log.read_text(errors="replace")[-6000:])  # shown when the test fails
        lock.close()
        kill(first)
        if second is not None:
            stop(second)
