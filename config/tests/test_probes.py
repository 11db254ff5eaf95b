"""/livez and /readyz: JSON on any host, even with the database down, and nothing written."""

from __future__ import annotations

import socket
import threading

import pytest
from django.db import connection
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from config import probes
from tenants.models import Domain


def test_it_answers_liveness_without_touching_anything(client: Client) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connection, "cursor", lambda: pytest.fail("/livez touched the database"))
        response = client.get("/livez", HTTP_HOST="10.1.2.3:8000")  # a kubelet's Host: the pod IP
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_it_answers_readiness_on_any_host(client: Client) -> None:
    response = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_it_writes_nothing(platform_client: Client) -> None:
    before = Domain.objects.count()
    for path in ("/livez", "/readyz"):
        assert platform_client.get(path).status_code == 200
    assert Domain.objects.count() == before


def test_it_answers_json_when_the_database_is_down(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # The probe opens its own connection: point it at a port where no server listens.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    params = {**probes.database_params(), "host": "127.0.0.1", "port": port}
    monkeypatch.setattr(probes, "database_params", lambda: params)
    response = client.get("/readyz", HTTP_HOST="localhost")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "failing", "checks": {"database": "failing", "broker": "ok"}}


def test_it_gives_up_on_a_stalled_dependency_at_the_deadline(
    client: Client, monkeypatch: pytest.MonkeyPatch, settings: SettingsWrapper
) -> None:
    settings.PROBE_TIMEOUT_MS = 300
    release = threading.Event()

    def stalled() -> bool:
        release.wait(10)
        return True

    monkeypatch.setitem(probes.READINESS, "broker", stalled)
    response = client.get("/readyz", HTTP_HOST="localhost")
    release.set()
    # Answered at the deadline, not when the check returned (10 s later).
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "timeout"}


def test_it_answers_probes_before_the_tenant_lookup(client: Client, db: None) -> None:
    # An unknown host gets the platform's 404 page for anything else, but probes answer.
    assert client.get("/", HTTP_HOST="unknown.example").status_code == 404
    assert client.get("/livez", HTTP_HOST="unknown.example").status_code == 200
