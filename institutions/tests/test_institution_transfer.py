"""Export, delete and import one institution: the round trip loses no row and no file."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import schema_context, schema_exists

from branding.services import brand_logo_set
from institutions.management.commands.seed_demo import DEMO_ROLES, _logo_png, _user_ensure, demo_email
from institutions.services import institution_create, institution_operator_action
from institutions.tests.test_operator_console import _operator
from institutions.transfer import _tables
from intake.demo import demo_case_ensure
from payments.demo import demo_payments_ensure
from review.demo import demo_staff_mfa_ensure
from storage.tenant import tenant_storage
from tenants.models import Domain, Institution, InstitutionRemoval, OperatorAction

# Slow: it exports, deletes and imports whole institutions with their files.
pytestmark = pytest.mark.slow

SLUG = "roundtrip"
OPERATOR = "operator@secondread.example.com"


@pytest.fixture
def seeded(db: None) -> Iterator[Institution]:
    """An institution with staff, a patient's case with real images and a report, an opinion's
    worth of data and payments, as the demo seed makes them."""
    institution = institution_create(name="Round Trip Clinic", slug=SLUG)
    brand_logo_set(brand=institution.brand, data=_logo_png("RT", "#1f4e79", "#a84d0b"))
    with schema_context(institution.schema_name):
        for role, full_name, flags in DEMO_ROLES:
            _user_ensure(demo_email(role, SLUG), full_name, flags)
        demo_staff_mfa_ensure()
        demo_case_ensure(institution=institution)
        demo_payments_ensure(institution=institution)
    Domain.objects.create(domain="second-opinion.roundtrip.example", tenant=institution, is_primary=False)
    # The test's transaction would hold the seed's deferred foreign-key checks until its end, and
    # PostgreSQL refuses to drop tables with pending checks: run them now, as a commit would.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield institution
    tenant_storage(institution.schema_name).delete_prefix("")


def _row_counts(schema: str) -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in _tables(schema):
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')  # noqa: S608 (catalog names)
            counts[table] = cursor.fetchone()[0]
    return counts


def _file_hashes(schema: str) -> dict[str, str]:
    storage = tenant_storage(schema)
    return {key: hashlib.sha256(storage.read_bytes(key)).hexdigest() for key in storage.list_keys("")}


def _public(institution: Institution) -> dict[str, object]:
    return {
        "domains": sorted(institution.domains.values_list("domain", flat=True)),
        "brand": (institution.brand.primary_colour, institution.brand.logo_key),
        "fee": (institution.service_settings.fee_enabled, institution.service_settings.fee_amount),
        "stripe": sorted(institution.stripe_accounts.values_list("account_id", flat=True)),
    }


def test_the_round_trip_loses_nothing(seeded: Institution, tmp_path: Path) -> None:
    schema = seeded.schema_name
    rows, files, public = _row_counts(schema), _file_hashes(schema), _public(seeded)
    assert rows["intake_case"] >= 1 and any(count > 0 for table, count in rows.items() if "instance" in table)
    assert len(files) >= 3  # the logo, the CD's images, the report
    archive = tmp_path / "roundtrip.tar.gz"

    institution_operator_action(
        institution_id=seeded.pk, operator_email=OPERATOR, action="suspend", reason="Contract ending"
    )

    call_command("export_institution", SLUG, "--output", str(archive), stdout=io.StringIO())
    _delete(archive)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not Institution.objects.filter(slug=SLUG).exists()
    # Who deleted it, why, and which archive holds it, kept; its operator actions too.
    removal = InstitutionRemoval.objects.get(slug=SLUG)
    assert (removal.removed_by, removal.reason) == (OPERATOR, "Contract ended")
    assert removal.name == "Round Trip Clinic"
    assert removal.archive_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert removal.archive_files == len(files)
    assert [(a.institution_id, a.institution_slug, a.reason) for a in OperatorAction.objects.all()] == [
        (None, SLUG, "Contract ending")
    ]
    console = _operator().get("/operators/").content.decode()
    assert "Round Trip Clinic (roundtrip)" in console and "Contract ended" in console
    assert not schema_exists(schema)
    assert not Domain.objects.filter(domain__endswith="roundtrip.example").exists()
    assert list(tenant_storage(schema).list_keys("")) == []

    call_command("import_institution", str(archive), stdout=io.StringIO())
    restored = Institution.objects.get(slug=SLUG)
    assert _row_counts(schema) == rows
    assert _file_hashes(schema) == files
    assert _public(restored) == public


def test_import_refuses_an_institution_that_exists(seeded: Institution, tmp_path: Path) -> None:
    archive = tmp_path / "roundtrip.tar.gz"
    call_command("export_institution", SLUG, "--output", str(archive), stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("import_institution", str(archive), stdout=io.StringIO())


def test_delete_refuses_without_a_current_export(seeded: Institution, tmp_path: Path) -> None:
    archive = tmp_path / "roundtrip.tar.gz"
    call_command("export_institution", SLUG, "--output", str(archive), stdout=io.StringIO())
    tenant_storage(seeded.schema_name).save("added-later.pdf", io.BytesIO(b"%PDF"), 4)
    with pytest.raises(CommandError, match="export it again"):
        _delete(archive)
    assert schema_exists(seeded.schema_name)
    assert not InstitutionRemoval.objects.exists()


def test_delete_refuses_without_who_and_why(seeded: Institution, tmp_path: Path) -> None:
    archive = tmp_path / "roundtrip.tar.gz"
    call_command("export_institution", SLUG, "--output", str(archive), stdout=io.StringIO())
    with pytest.raises(CommandError, match="--by"):
        call_command("delete_institution", SLUG, "--archive", str(archive), stdout=io.StringIO())
    with pytest.raises(CommandError, match="who deletes the institution and why"):
        call_command(
            "delete_institution", SLUG, "--archive", str(archive), "--by", OPERATOR, "--reason", " ",
            stdout=io.StringIO(),
        )  # fmt: skip
    assert schema_exists(seeded.schema_name) and Institution.objects.filter(slug=SLUG).exists()


def test_the_record_of_a_deletion_cannot_be_rewritten(seeded: Institution, tmp_path: Path) -> None:
    archive = tmp_path / "roundtrip.tar.gz"
    call_command("export_institution", SLUG, "--output", str(archive), stdout=io.StringIO())
    _delete(archive)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        InstitutionRemoval.objects.update(reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        InstitutionRemoval.objects.all().delete()
    assert InstitutionRemoval.objects.get(slug=SLUG).reason == "Contract ended"


def test_an_operator_action_can_only_lose_its_institution(neuro: Institution) -> None:
    """The trigger lets a deletion detach an action, and nothing else: not a changed reason
    slipped in with it."""
    institution_operator_action(
        institution_id=neuro.pk, operator_email=OPERATOR, action="suspend", reason="Test"
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OperatorAction.objects.update(institution=None, reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OperatorAction.objects.update(institution_slug="other")
    assert OperatorAction.objects.get().reason == "Test"


def _delete(archive: Path) -> None:
    call_command(
        "delete_institution", SLUG, "--archive", str(archive), "--by", OPERATOR, "--reason", "Contract ended",
        stdout=io.StringIO(),
    )  # fmt: skip
