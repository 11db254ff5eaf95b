"""/healthz reports each service; logs are JSON lines that carry no patient data."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from django.test import Client

from config import probes
from config.logging import ContextFilter, JsonFormatter


def test_it_reports_every_service_healthy(neuro_client: Client) -> None:
    response = neuro_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


def test_it_names_the_failing_service(platform_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> bool:
        raise OSError("storage unreachable")

    monkeypatch.setitem(probes.HEALTH, "storage", broken)
    response = platform_client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "failing"}


def _format(record: logging.LogRecord) -> dict[str, object]:
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_it_keeps_our_messages_and_safe_fields() -> None:
    record = logging.LogRecord("imaging.ingest", logging.INFO, __file__, 1, "ingested %d files", (3,), None)
    record.count = 3
    entry = _format(record)
    assert entry["message"] == "ingested 3 files"
    assert entry["count"] == 3
    assert entry["level"] == "info"


def test_it_drops_values_third_parties_interpolate() -> None:
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", ("/cases/Jane Doe",), None
    )
    entry = _format(record)
    assert "Jane Doe" not in json.dumps(entry)


def test_it_drops_unknown_extras_and_exception_messages() -> None:
    try:
        raise ValueError("patient Jane Doe, born 1970-01-01")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("intake.views", logging.ERROR, __file__, 1, "upload failed", (), exc_info)
    record.patient_name = "Jane Doe"
    text = json.dumps(_format(record))
    assert "Jane Doe" not in text and "1970" not in text
    assert '"exception": "ValueError"' in text
