"""Statements compiled once (tenants.prepared): the same rows and objects as the ORM's, read
afresh on every call, updates of the rows their filter picks only, and the host lookup every
request runs among them."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import F
from django.db.models.sql.compiler import SQLCompiler
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import host_of
from institutions.services import institution_set_status
from tenants.models import Domain, Institution
from tenants.prepared import PreparedSelect, PreparedUpdate


def _domain_select() -> PreparedSelect[Domain]:
    return PreparedSelect(
        lambda host: Domain.objects.select_related("tenant", "tenant__service_settings").filter(domain=host)[
            :1
        ],
        "host.invalid",
    )


@pytest.fixture
def compilations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SELECTs the ORM compiles."""
    compiled: list[str] = []
    real = SQLCompiler.as_sql

    def spy(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
        sql, params = real(self, *args, **kwargs)
        compiled.append(sql)
        return sql, params

    monkeypatch.setattr(SQLCompiler, "as_sql", spy)
    return compiled


def test_it_returns_the_objects_the_orm_returns(neuro: Institution) -> None:
    host = host_of(neuro)
    expected = Domain.objects.select_related("tenant", "tenant__service_settings").get(domain=host)
    found = _domain_select().first(host)
    assert found is not None
    assert found.__dict__.keys() == expected.__dict__.keys()
    assert {k: v for k, v in found.__dict__.items() if k != "_state"} == {
        k: v for k, v in expected.__dict__.items() if k != "_state"
    }
    assert found.tenant == neuro and found.tenant.status == neuro.status
    with CaptureQueriesContext(connection) as queries:  # the joined rows came with it
        assert found.tenant.service_settings.pk == expected.tenant.service_settings.pk
    assert len(queries) == 0


def test_it_returns_none_when_no_row_matches(db: None) -> None:
    assert _domain_select().first("nobody.localhost") is None


def test_it_compiles_once_and_reads_the_row_afresh_each_time(
    neuro: Institution, compilations: list[str]
) -> None:
    select = _domain_select()
    host = host_of(neuro)
    first = select.first(host)
    institution_set_status(institution=neuro, status=Institution.Status.SUSPENDED)
    compilations.clear()
    with CaptureQueriesContext(connection) as queries:
        second = select.first(host)
    assert first is not None and second is not None
    assert first.tenant.status == Institution.Status.ACTIVE
    assert second.tenant.status == Institution.Status.SUSPENDED
    assert compilations == []
    assert len(queries) == 1


def test_it_refuses_a_lookup_that_rewrites_its_value(db: None) -> None:
    select = PreparedSelect(lambda host: Domain.objects.filter(domain__icontains=host)[:1], "host.invalid")
    with pytest.raises(ValueError, match="marker"):
        select.first("neuro")


def test_a_suspension_refuses_the_next_request_at_once(neuro: Institution, neuro_client: Client) -> None:
    assert neuro_client.get("/").status_code == 200
    institution_set_status(institution=neuro, status=Institution.Status.SUSPENDED)
    assert neuro_client.get("/").status_code == 503
    institution_set_status(institution=neuro, status=Institution.Status.ACTIVE)
    assert neuro_client.get("/").status_code == 200


def test_a_host_is_routed_to_its_own_institution_only(
    neuro: Institution, cancer: Institution, neuro_client: Client, cancer_client: Client
) -> None:
    # The same compiled statement serves both hosts, one after the other.
    for _ in range(2):
        assert "Northfield Neurological Institute" in neuro_client.get("/").content.decode()
        assert "Lakeside Cancer Center" in cancer_client.get("/").content.decode()
        assert "Northfield Neurological Institute" not in cancer_client.get("/").content.decode()


def _status_update() -> PreparedUpdate[Institution]:
    return PreparedUpdate(
        lambda pk, status: Institution.objects.filter(pk=pk, status=status), -1, "status-marker"
    )


def test_an_update_sets_its_fields_where_its_filter_holds(neuro: Institution, cancer: Institution) -> None:
    update = _status_update()
    changed = update.run({"status": Institution.Status.SUSPENDED, "status_changed": None}, neuro.pk, "active")
    assert changed == 1
    assert update.run({"status": Institution.Status.PENDING, "status_changed": None}, neuro.pk, "active") == 0
    neuro.refresh_from_db()
    cancer.refresh_from_db()
    assert neuro.status == Institution.Status.SUSPENDED and neuro.status_changed is None
    assert cancer.status == Institution.Status.ACTIVE  # another row of the same table: untouched


def test_an_update_compiles_once_per_shape_of_its_values(neuro: Institution, compilations: list[str]) -> None:
    update = _status_update()
    now = timezone.now()
    update.run({"status": "suspended", "status_changed": now}, neuro.pk, "active")
    update.run({"status": "active", "status_changed": now}, neuro.pk, "suspended")
    update.run({"status": "suspended", "status_changed": None}, neuro.pk, "active")  # "= NULL"
    update.run({"status": "active", "status_changed": None}, neuro.pk, "suspended")
    neuro.refresh_from_db()
    assert neuro.status == "active" and neuro.status_changed is None
    # The spy sees SELECT compilers only: an UPDATE's as_sql is its own; count the shapes instead.
    assert len(update._compiled[connections["default"]]) == 2


def test_an_update_refuses_expressions(neuro: Institution) -> None:
    with pytest.raises(ValueError, match="plain values"):
        _status_update().run({"name": F("slug")}, neuro.pk, "active")
