"""Optional OpenTelemetry tracing, web → Celery → PostgreSQL, sent over OTLP/HTTP.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set;
the SDK reads the rest of its standard variables itself (``OTEL_SERVICE_NAME``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_SCHEDULE_DELAY`` …). A request's
trace goes on in the Celery task it queues (the trace context travels in the message's headers)
and covers the SQL statements of both.

Patient data never leaves: a span keeps only the attributes on ``SAFE_ATTRIBUTES`` (method,
route pattern, status, task name and state, the SQL text with its placeholders — never its
parameters), so no URL with its query string or token, no client address or user agent, and an
exception event keeps its type, never its message (which may quote a DICOM header). The
filtering happens in the exporter, after every instrumentation has added what it adds.

Started per process after any fork (BatchSpanProcessor's thread does not survive one): in each
gunicorn worker when it loads the application (``config.wsgi``), and in each Celery pool process
(``celery_tracing_connect``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

SAFE_ATTRIBUTES = frozenset(
    {
        # Django requests (old and new HTTP semantic conventions)
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "server.address",
        "server.port",
        "http.host",
        "http.server_name",
        "net.host.port",
        "error.type",
        # Celery
        "celery.action",
        "celery.state",
        "celery.task_name",
        "celery.hostname",
        "messaging.system",
        "messaging.message.id",
        "messaging.message_id",
        "messaging.destination",
        "messaging.destination.name",
        "messaging.conversation_id",
        # PostgreSQL (psycopg): the statement as written, placeholders and all
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.statement",
        "db.query.text",
        "net.peer.name",
        "net.peer.port",
        # exceptions recorded on a span: their type only
        "exception.type",
        "exception.escaped",
    }
)
# The health probes are called every few seconds by the orchestrator: not worth a trace each.
EXCLUDED_URLS = "livez,readyz,healthz,tls/ask"


def tracing_configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _safe(attributes: Any) -> dict[str, Any]:
    return {key: value for key, value in (attributes or {}).items() if key in SAFE_ATTRIBUTES}


def span_scrub(span: Any) -> Any:
    """The same span with only safe attributes, on the span and on its events."""
    from opentelemetry.sdk.trace import Event, ReadableSpan

    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_safe(span.attributes),
        events=[Event(event.name, _safe(event.attributes), event.timestamp) for event in span.events],
        links=span.links,
        kind=span.kind,
        status=type(span.status)(span.status.status_code),  # without its description
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrubbing_exporter(inner: Any) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class ScrubbingExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return inner.export([span_scrub(span) for span in spans])

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return ScrubbingExporter()


_started = False


def tracing_start(*, service: str, exporter: Any = None) -> bool:
    """Set up tracing in this process if it is configured (or ``exporter`` is given, in tests);
    True if it is on. Idempotent."""
    global _started
    if _started:
        return True
    if exporter is None and not tracing_configured():
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_scrubbing_exporter(exporter or OTLPSpanExporter())))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    _started = True
    return True


def celery_tracing_connect() -> None:
    """Start tracing in each process that runs tasks: the prefork pool's children (after their
    fork), or the worker itself with the solo and thread pools."""
    from celery import signals

    @signals.worker_process_init.connect(weak=False)
    def _in_pool_process(**kwargs: object) -> None:
        tracing_start(service="secondread-worker")

    @signals.worker_init.connect(weak=False)
    def _in_worker(sender: Any = None, **kwargs: object) -> None:
        pool = str(getattr(sender, "pool_cls", "") or "")
        if "prefork" not in pool and "processes" not in pool:
            tracing_start(service="secondread-worker")
