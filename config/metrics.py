"""Prometheus metrics, served on a separate port (``METRICS_PORT``), never on the public site.

What is measured (labels never carry patient data: view names, task names, institution slugs):

- ``secondread_http_requests_total{view,method,status}`` and
  ``secondread_http_request_seconds{view}``: every request, by URL pattern name (not path);
- ``secondread_celery_tasks_total{task,outcome}`` (succeeded, failed, retried) and
  ``secondread_celery_task_seconds{task}``: ingest, upload and email rates are the rates of
  their tasks;
- gauges refreshed by the beat task ``config.metrics_refresh`` (every 30 s) and served by the
  worker: ``secondread_celery_queue_depth{queue}``, ``secondread_storage_up`` (a write/read/delete
  round trip; storage is not part of the readiness probe), and per institution (from the
  operator console's usage figures) ``secondread_institution_cases{institution}`` and
  ``secondread_institution_storage_bytes{institution}``.

Processes: gunicorn and Celery fork workers, so production uses prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by deploy/secondread.sh): each process
writes its own files and the endpoint, in the parent process, adds them up. gunicorn's master
serves web's endpoint (deploy/gunicorn.conf.py); the worker's main process serves the worker's
(``serve_metrics`` on Celery's ``worker_init``). Without that variable (``./sr run``, tests)
everything is one in-process registry.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from amqp.exceptions import NotFound
from django.http import HttpRequest, HttpResponse
from kombu.exceptions import ChannelError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, multiprocess

logger = logging.getLogger("config.metrics")

REQUESTS = Counter(
    "secondread_http_requests", "HTTP requests answered, by URL pattern", ["view", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "secondread_http_request_seconds",
    "Time to answer an HTTP request, by URL pattern",
    ["view"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TASKS = Counter("secondread_celery_tasks", "Celery tasks finished, by outcome", ["task", "outcome"])
TASK_SECONDS = Histogram(
    "secondread_celery_task_seconds",
    "Time a Celery task ran",
    ["task"],
    buckets=(0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
)
# "mostrecent": the value last set by any process (the task runs in one worker child).
QUEUE_DEPTH = Gauge(
    "secondread_celery_queue_depth", "Tasks waiting in the queue", ["queue"], multiprocess_mode="mostrecent"
)
STORAGE_UP = Gauge(
    "secondread_storage_up", "1 if the last storage round trip worked", multiprocess_mode="mostrecent"
)
INSTITUTION_CASES = Gauge(
    "secondread_institution_cases", "Cases of an institution", ["institution"], multiprocess_mode="mostrecent"
)
INSTITUTION_STORAGE = Gauge(
    "secondread_institution_storage_bytes",
    "Bytes an institution stores",
    ["institution"],
    multiprocess_mode="mostrecent",
)


class MetricsMiddleware:
    """Counts and times every request (outermost, so refusals and probes count too)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "unnamed") if match is not None else "unrouted"
        REQUESTS.labels(view, request.method or "", str(response.status_code)).inc()
        REQUEST_SECONDS.labels(view).observe(time.perf_counter() - started)
        return response


def connect_task_signals() -> None:
    from celery import signals

    started: dict[str, float] = {}

    @signals.task_prerun.connect(weak=False)
    def _prerun(task_id: str, **kwargs: Any) -> None:
        started[task_id] = time.perf_counter()

    @signals.task_postrun.connect(weak=False)
    def _postrun(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
        began = started.pop(task_id, None)
        if began is not None:
            TASK_SECONDS.labels(task.name).observe(time.perf_counter() - began)

    @signals.task_success.connect(weak=False)
    def _success(sender: Any, **kwargs: Any) -> None:
        TASKS.labels(sender.name, "succeeded").inc()

    @signals.task_failure.connect(weak=False)
    def _failure(sender: Any, **kwargs: Any) -> None:
        TASKS.labels(sender.name, "failed").inc()

    @signals.task_retry.connect(weak=False)
    def _retry(sender: Any, **kwargs: Any) -> None:
        TASKS.labels(sender.name, "retried").inc()


def metrics_refresh() -> None:
    """Measure what no request measures: queue depth, storage, per-institution figures."""
    from django.conf import settings

    from config.celery_app import app
    from storage.backends import get_backend
    from tenants.models import InstitutionUsage

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with app.connection_for_read() as conn:
        try:
            depth = conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except (ChannelError, NotFound):  # Redis drops an empty list: no queue means no task
            depth = 0
    QUEUE_DEPTH.labels(queue).set(depth)
    STORAGE_UP.set(1 if get_backend().health_check() else 0)
    for usage in InstitutionUsage.objects.select_related("institution"):
        INSTITUTION_CASES.labels(usage.institution.slug).set(usage.case_count)
        INSTITUTION_STORAGE.labels(usage.institution.slug).set(usage.storage_bytes)


# --- The endpoint -----------------------------------------------------------------------------


def metrics_app(token: str = "") -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering /metrics; with ``token``, only to ``Authorization: Bearer <token>``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        exposition = make_wsgi_app(registry)
    else:
        exposition = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).removeprefix("Bearer ")
        if token and not hmac.compare_digest(given.encode(), token.encode()):
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"unauthorized\n"]
        return exposition(environ, start_response)

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line
        pass


def serve_metrics(port: int, token: str = "") -> WSGIServer:
    """Serve the metrics endpoint on ``port`` from a daemon thread of this process."""
    server = make_server("0.0.0.0", port, metrics_app(token), handler_class=_QuietHandler)  # noqa: S104
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("metrics served", extra={"event": "metrics.serving", "count": port})
    return server
