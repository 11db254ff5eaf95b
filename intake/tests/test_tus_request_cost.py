"""What a tus request costs the web server beside its bytes (issue 13): the statements it runs,
and which of them the ORM compiles again on every request (tenants.prepared compiles the hot
ones once). Sign-out, session expiry, deactivation and a password change still take effect on
the next request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler, SQLUpdateCompiler
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from intake.models import Case
from intake.tests.test_tus_protocol import TUS, _create, _patch, case, patient_client
from intake.tus import messages
from intake.tus.protocol import encode_metadata

__all__ = ["case", "patient_client"]  # fixtures


@pytest.fixture
def compilations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the ORM compiles (SELECTs and UPDATEs alike)."""
    compiled: list[str] = []
    for compiler in (SQLCompiler, SQLUpdateCompiler):
        monkeypatch.setattr(compiler, "as_sql", _spy(compiler.as_sql, compiled))
    return compiled


def _spy(real: Any, compiled: list[str]) -> Any:
    def as_sql(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
        sql, params = real(self, *args, **kwargs)
        compiled.append(sql)
        return sql, params

    return as_sql


def _location(client: Client, case: Case, length: int = 100) -> str:
    response = _create(client, case, length)
    assert response.status_code == 201
    return str(response["Location"])


def test_a_head_runs_four_statements_and_compiles_none(
    patient_client: Client, case: Case, compilations: list[str]
) -> None:
    location = _location(patient_client, case)
    patient_client.head(location, **TUS)  # warm-up: each statement is compiled on first use
    compilations.clear()
    with CaptureQueriesContext(connection) as queries:
        response = patient_client.head(location, **TUS)
    assert response.status_code == 200
    # The host's institution, the session, the user, the upload.
    assert len(queries) == 4
    assert compilations == []


def test_a_patch_runs_six_statements_and_compiles_none(
    patient_client: Client, case: Case, compilations: list[str]
) -> None:
    location = _location(patient_client, case)
    assert _patch(patient_client, location, 0, b"x" * 10).status_code == 204
    compilations.clear()
    with CaptureQueriesContext(connection) as queries:
        response = _patch(patient_client, location, 10, b"x" * 10)
    assert response.status_code == 204
    assert response["Upload-Offset"] == "20"
    # Institution, session, user, the upload as its owner's, again under its lease, the commit.
    assert len(queries) == 6
    assert compilations == []


def test_a_patch_to_a_case_no_longer_editable_is_refused(patient_client: Client, case: Case) -> None:
    location = _location(patient_client, case)
    assert _patch(patient_client, location, 0, b"x" * 10).status_code == 204
    Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED)
    response = _patch(patient_client, location, 10, b"x" * 10)
    assert response.status_code == 403
    assert response.content.decode() == messages.CASE_LOCKED
    assert patient_client.head(location, **TUS).status_code == 200  # still the owner's to see


def test_a_deleted_session_refuses_the_next_request(patient_client: Client, case: Case) -> None:
    location = _location(patient_client, case)
    assert patient_client.head(location, **TUS).status_code == 200
    Session.objects.all().delete()  # as signing a user out everywhere does
    assert patient_client.head(location, **TUS).status_code == 403


def test_a_deactivated_user_is_refused_at_the_next_request(patient_client: Client, case: Case) -> None:
    location = _location(patient_client, case)
    assert patient_client.head(location, **TUS).status_code == 200
    User.objects.filter(pk=case.owner_id).update(is_active=False)
    assert patient_client.head(location, **TUS).status_code == 403


def test_a_changed_password_signs_the_other_sessions_out(patient_client: Client, case: Case) -> None:
    location = _location(patient_client, case)
    assert patient_client.head(location, **TUS).status_code == 200
    owner = User.objects.get(pk=case.owner_id)
    owner.set_password("another long passphrase")
    owner.save()
    assert patient_client.head(location, **TUS).status_code == 403


def test_a_session_signed_in_before_the_backends_were_renamed_stays_signed_in(
    patient_client: Client, case: Case
) -> None:
    location = _location(patient_client, case)
    session = patient_client.session
    assert session[BACKEND_SESSION_KEY] in settings.AUTHENTICATION_BACKENDS
    session[BACKEND_SESSION_KEY] = "allauth.account.auth_backends.AuthenticationBackend"
    session.save()
    assert patient_client.head(location, **TUS).status_code == 200


def test_an_expired_session_refuses_the_next_request(patient_client: Client, case: Case) -> None:
    location = _location(patient_client, case)
    assert patient_client.head(location, **TUS).status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert patient_client.head(location, **TUS).status_code == 403


def test_a_creation_with_upload_compiles_only_its_quota_sum(
    patient_client: Client, case: Case, compilations: list[str]
) -> None:
    _location(patient_client, case)  # warm-up
    compilations.clear()
    response = patient_client.post(
        "/intake/tus/",
        b"x" * 10,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH="20",
        HTTP_UPLOAD_METADATA=encode_metadata(
            {"case": str(case.public_id), "kind": "imaging", "filename": "IM000002"}
        ),
        **TUS,
    )
    assert response.status_code == 201
    assert response["Upload-Offset"] == "10"
    assert len(compilations) == 1 and "SUM(" in compilations[0], compilations
