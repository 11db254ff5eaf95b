"""The audit log is a hash chain the application cannot rewrite unnoticed, and it records
sign-ins, sign-outs, failed sign-ins and second-factor events."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from audit.services import audit_append, audit_chain_verify
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from tenants.models import Institution
from tests.staff import MFA_URL, totp_code


def test_it_chains_every_event_and_verifies_the_chain(neuro: Institution) -> None:
    with schema_context(neuro.schema_name):
        first = audit_append(action="case.view", actor_email="a@example.org", detail={"n": 1})
        second = audit_append(action="case.view", actor_email="b@example.org")
        assert (
            first.seq is not None
            and second.seq == first.seq + 1
            and first.row_hash
            and second.row_hash != first.row_hash
        )
        assert audit_chain_verify().intact
    call_command("audit_verify", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_it_notices_a_rewritten_event(neuro: Institution) -> None:
    with schema_context(neuro.schema_name):
        event = audit_append(action="opinion.sign", actor_email="reviewer@example.org")
        audit_append(action="case.view")
        # Someone with the table owner's rights switches the append-only trigger off and edits.
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            cursor.execute(
                "UPDATE audit_auditevent SET actor_email = 'someone.else@example.org' WHERE id = %s",
                [event.pk],
            )
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
        report = audit_chain_verify()
    assert not report.intact and report.broken_at == event.seq
    with pytest.raises(CommandError, match=neuro.schema_name):
        call_command("audit_verify", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_it_notices_removed_newest_events(neuro: Institution) -> None:
    with schema_context(neuro.schema_name):
        last = audit_append(action="case.view")
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
        assert not audit_chain_verify().intact


def test_it_records_sign_in_sign_out_and_failures(neuro: Institution) -> None:
    client = Client(HTTP_HOST="neuro.localhost", REMOTE_ADDR="198.51.100.7")
    client.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": "wrong-password"})
    client.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": DEMO_PASSWORD})
    client.post("/accounts/logout/")
    staff = Client(HTTP_HOST="neuro.localhost")
    staff.post("/accounts/login/", {"login": "reviewer2@neuro.example.com", "password": DEMO_PASSWORD})
    staff.post(MFA_URL, {"code": "000000" if totp_code() != "000000" else "111111"})
    with schema_context(neuro.schema_name):
        actions = list(
            AuditEvent.objects.filter(action__startswith="auth.")
            .order_by("seq")
            .values_list("action", "actor_email", "allowed", "ip_address")
        )
        assert audit_chain_verify().intact
    assert ("auth.sign_in_failed", "patient@neuro.example.com", False, "198.51.100.7") in actions
    assert ("auth.sign_in", "patient@neuro.example.com", True, "198.51.100.7") in actions
    assert ("auth.sign_out", "patient@neuro.example.com", True, "198.51.100.7") in actions
    assert any(a[0] == "auth.mfa_failed" and a[1] == "reviewer2@neuro.example.com" for a in actions)


def test_concurrent_writers_keep_one_chain(neuro: Institution) -> None:
    """Each event is one statement that moves the chain's head and inserts the row: writers on
    connections of their own, at once, still make one unbroken chain (no seq twice, none lost)."""
    import threading
    import uuid

    from tests.live import committed

    action = f"test.concurrent.{uuid.uuid4().hex[:8]}"
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with schema_context(neuro.schema_name):
                start.wait(timeout=30)
                for _ in range(15):
                    audit_append(action=action, actor_email="writer@example.org")
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    writers = [threading.Thread(target=write) for _ in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert not failures, failures

    def read() -> tuple[bool, list[int | None]]:
        with schema_context(neuro.schema_name):
            rows = AuditEvent.objects.filter(action=action).order_by("seq")
            seqs = list(rows.values_list("seq", flat=True))
            return audit_chain_verify().intact, seqs

    intact, seqs = committed(read)
    assert intact
    assert len(seqs) == 60 and len(set(seqs)) == 60
