"""The audit log: append-only in the database itself, browsed and exported by admins only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from intake.models import Case
from tenants.models import Institution


def test_it_refuses_to_update_or_delete_audit_events(neuro: Institution) -> None:
    with schema_context(neuro.schema_name):
        event = AuditEvent.objects.create(action="case.view", actor_email="someone@example.com")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(action="nothing")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).delete()
        assert AuditEvent.objects.get(pk=event.pk).action == "case.view"


def test_it_keeps_the_trail_when_a_case_is_deleted(
    neuro: Institution, make_case: Callable[..., Case]
) -> None:
    case = make_case(with_files=False)
    with schema_context(neuro.schema_name):
        AuditEvent.objects.create(action="case.view", case_id=case.pk)
        case_id = case.pk
        case.delete()
        assert AuditEvent.objects.filter(case_id=case_id).exists()


def test_it_lets_admins_browse_and_export_the_log(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    staff_client("coordinator").get(f"/workspace/cases/{case.public_id}/")
    admin = staff_client("admin")
    page = admin.get("/workspace/audit/", {"case_number": str(case.number)}).content.decode()
    assert "coordinator@neuro.example.com" in page and "case.view" in page
    export = admin.get("/workspace/audit.csv", {"action": "case.view"})
    body = export.getvalue().decode()
    assert export["Content-Type"].startswith("text/csv")
    assert body.splitlines()[0] == "at,who,action,result,case,object,ip,detail"
    assert f"coordinator@neuro.example.com,case.view,allowed,{case.number}" in body
    with schema_context(neuro.schema_name):
        assert AuditEvent.objects.filter(
            action="audit.export", actor_email="admin@neuro.example.com"
        ).exists()


def test_it_keeps_everyone_but_admins_out_of_the_log(
    neuro: Institution, staff_client: Callable[[str], Client], cancer_client: Client
) -> None:
    for role in ("coordinator", "reviewer1"):
        client = staff_client(role)
        assert client.get("/workspace/audit/").status_code == 403
        assert client.get("/workspace/audit.csv").status_code == 403
    with schema_context(neuro.schema_name):
        assert AuditEvent.objects.filter(action="audit.view", allowed=False).count() == 2
    from tests.staff import staff_force_login

    staff_force_login(cancer_client, "admin@cancer.example.com")
    # The other institution's admin sees their own (empty of neuro) log on their own site only.
    body = cancer_client.get("/workspace/audit/").content.decode()
    assert "coordinator@neuro.example.com" not in body


def test_it_audits_refused_signed_download_links(
    neuro: Institution, neuro_client: Client, cancer_client: Client
) -> None:
    import datetime as dt

    from storage.tokens import download_token_mint
    from storage.views import EXPIRED_LINK_MESSAGE, INVALID_LINK_MESSAGE, WRONG_SITE_MESSAGE

    key = "neuro/opinions/0b7e1c8e6f1d4c2a.pdf"
    token = download_token_mint(key=key, expires=dt.timedelta(minutes=5))
    expired = download_token_mint(
        key=key, expires=dt.timedelta(minutes=5), now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    )
    tampered = neuro_client.get(f"/files/signed/{token[:-2]}xx")
    too_late = neuro_client.get(f"/files/signed/{expired}")
    elsewhere = cancer_client.get(f"/files/signed/{token}")
    assert (tampered.status_code, tampered.content.decode()) == (403, INVALID_LINK_MESSAGE)
    assert (too_late.status_code, too_late.content.decode()) == (410, EXPIRED_LINK_MESSAGE)
    assert (elsewhere.status_code, elsewhere.content.decode()) == (403, WRONG_SITE_MESSAGE)
    with schema_context(neuro.schema_name):
        neuro_reasons = sorted(
            e.detail["reason"]
            for e in AuditEvent.objects.filter(action="file.signed_link_refused", allowed=False)
        )
    with schema_context("cancer"):
        cancer_reasons = [
            e.detail["reason"]
            for e in AuditEvent.objects.filter(action="file.signed_link_refused", allowed=False)
        ]
    assert neuro_reasons == ["expired", "invalid"]
    assert cancer_reasons == ["wrong_site"]
    with schema_context(neuro.schema_name):
        logged = str(list(AuditEvent.objects.filter(action="file.signed_link_refused").values()))
    assert token[:20] not in logged and "0b7e1c8e6f1d4c2a" not in logged  # no token, no key
