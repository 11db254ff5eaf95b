"""Prometheus metrics: requests by view, task outcomes, gauges, and a guarded endpoint."""

from __future__ import annotations

import io
from typing import Any

from django.test import Client
from prometheus_client import REGISTRY

from config.metrics import metrics_app, metrics_refresh
from institutions.usage import institution_usage_refresh
from tenants.models import Institution


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _get(app: Any, authorization: str | None = None) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "wsgi.input": io.BytesIO(),
        "QUERY_STRING": "",
    }
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization
    status: list[str] = []
    body = b"".join(app(environ, lambda line, headers: status.append(line)))
    return status[0], body


def test_it_counts_requests_by_url_pattern_not_path(platform_client: Client) -> None:
    before = _value("secondread_http_requests_total", view="platform_home", method="GET", status="200")
    platform_client.get("/")
    after = _value("secondread_http_requests_total", view="platform_home", method="GET", status="200")
    assert after == before + 1
    assert _value("secondread_http_request_seconds_count", view="platform_home") >= 1


def test_it_counts_task_outcomes(db: None) -> None:
    from outbox.tasks import outbox_deliver

    before = _value("secondread_celery_tasks_total", task="outbox.deliver", outcome="succeeded")
    outbox_deliver.apply(args=[0])  # no such message: nothing to do, and done
    after = _value("secondread_celery_tasks_total", task="outbox.deliver", outcome="succeeded")
    assert after == before + 1


def test_it_refreshes_queue_storage_and_institution_gauges(neuro: Institution) -> None:
    institution_usage_refresh()
    metrics_refresh()
    from django.conf import settings

    assert _value("secondread_celery_queue_depth", queue=settings.CELERY_TASK_DEFAULT_QUEUE) >= 0
    assert _value("secondread_storage_up") == 1
    assert _value("secondread_institution_cases", institution="neuro") >= 0
    assert _value("secondread_institution_storage_bytes", institution="neuro") > 0  # its logo


def test_the_endpoint_wants_the_token_when_one_is_set() -> None:
    app = metrics_app("s3cret-token")
    assert _get(app)[0].startswith("401")
    assert _get(app, "Bearer wrong")[0].startswith("401")
    status, body = _get(app, "Bearer s3cret-token")
    assert status.startswith("200") and b"secondread_http_requests_total" in body


def test_no_label_carries_patient_data(neuro: Institution) -> None:
    # Labels are view names, task names and slugs; a patient's name in a URL never becomes one.
    client = Client(HTTP_HOST="neuro.localhost")
    client.get("/opinions/Zebedee-Quartermain/")
    _, body = _get(metrics_app())
    assert b"Zebedee" not in body
