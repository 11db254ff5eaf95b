"""OpenTelemetry tracing (config.tracing): a patient's request and the task it queues are one
trace, exported over OTLP/HTTP, with no patient data in it.

The collector is the one thing a test double stands in for: a small OTLP/HTTP receiver on
loopback that decodes what gunicorn and a prefork Celery worker (both real, as production runs
them) send, with the protocol's own protobuf messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, Status, StatusCode

from config.tracing import span_scrub, tracing_configured
from tests.faults.processes import stop, web_server, worker_start
from tests.serving import serve_in_thread
from tests.waiting import wait_until

PATIENT_NAME = "ALVAREZ^ROBERT"
PATIENT_EMAIL = "patient@neuro.example.com"


@dataclass
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, str]] = field(default_factory=list)


def _value(any_value: Any) -> str:
    kind = any_value.WhichOneof("value")
    return str(getattr(any_value, kind)) if kind else ""


class OtlpReceiver:
    """Accepts OTLP/HTTP trace exports (protobuf) on loopback and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.raw: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.take(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve_in_thread(self.server)

    def take(self, body: bytes) -> None:
        self.raw.append(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=resource.get("service.name", ""),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={kv.key: _value(kv.value) for kv in span.attributes},
                            events=[
                                {kv.key: _value(kv.value) for kv in event.attributes} for event in span.events
                            ],
                        )
                    )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


def _password_reset(port: int) -> None:
    """A patient asks for a password reset (the email is queued as a task), from a URL whose
    query string holds a name, as a careless link might."""
    session = requests.Session()
    host = {"Host": "neuro.localhost"}
    url = f"http://127.0.0.1:{port}/accounts/password/reset/"
    form = session.get(url, params={"next": PATIENT_NAME}, headers=host, timeout=30)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    answer = session.post(
        url,
        data={"email": PATIENT_EMAIL, "csrfmiddlewaretoken": token.group(1)},
        headers=host,
        timeout=30,
        allow_redirects=False,
    )
    assert answer.status_code == 302


@pytest.mark.slow
@pytest.mark.django_db
def test_a_request_and_the_task_it_queues_are_one_trace_without_patient_data(tmp_path: Path) -> None:
    log = tmp_path / "processes.log"
    otel = {"OTEL_BSP_SCHEDULE_DELAY": "200"}
    with otlp_receiver() as receiver:
        otel["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        worker = worker_start(name="tracing", log=log, pool="prefork", **otel)
        try:
            with web_server(log=log, **otel) as server:
                _password_reset(server.port)

                def one_trace() -> tuple[ReceivedSpan, ReceivedSpan] | None:
                    posts = [
                        s
                        for s in receiver.spans
                        if s.service == "secondread-web" and s.name.startswith("POST")
                    ]
                    runs = [
                        s
                        for s in receiver.spans
                        if s.service == "secondread-worker" and s.name.startswith("run/")
                    ]
                    for post in posts:
                        for run in runs:
                            if run.trace_id == post.trace_id:
                                return post, run
                    return None

                found = wait_until(
                    one_trace,
                    timeout=90,
                    message=f"no worker span joined the request's trace: {log.read_text()[-3000:]}",
                )
        finally:
            stop(worker)
    post, run = found
    assert post.attributes["http.route"].endswith("accounts/password/reset/")
    assert "outbox" in run.name
    # The task's trace also holds its SQL, with placeholders, never values.
    statements = [s for s in receiver.spans if s.trace_id == post.trace_id and "db.statement" in s.attributes]
    assert statements
    exported = b"".join(receiver.raw)
    for secret in ("ALVAREZ", PATIENT_EMAIL, "patient%40neuro", "next="):
        assert secret.encode() not in exported, secret
    assert not any("http.url" in s.attributes or "http.target" in s.attributes for s in receiver.spans)


def test_a_span_keeps_only_safe_attributes_and_no_exception_message() -> None:
    context = SpanContext(trace_id=1, span_id=2, is_remote=False)
    span = ReadableSpan(
        name="GET cases/<int:case_id>/",
        context=context,
        attributes={
            "http.route": "cases/<int:case_id>/",
            "http.status_code": 500,
            "http.url": f"https://neuro.example.com/cases/7/?q={PATIENT_NAME}",
            "net.peer.ip": "203.0.113.9",
            "http.user_agent": "Mozilla/5.0",
        },
        events=[
            Event(
                "exception",
                {
                    "exception.type": "ValueError",
                    "exception.message": f"bad name {PATIENT_NAME}",
                    "exception.stacktrace": f"... {PATIENT_NAME} ...",
                },
            )
        ],
        status=Status(StatusCode.ERROR, f"ValueError: bad name {PATIENT_NAME}"),
    )
    scrubbed = span_scrub(span)
    assert dict(scrubbed.attributes or {}) == {"http.route": "cases/<int:case_id>/", "http.status_code": 500}
    assert [dict(event.attributes or {}) for event in scrubbed.events] == [{"exception.type": "ValueError"}]
    assert scrubbed.status.status_code is StatusCode.ERROR
    assert PATIENT_NAME not in repr(scrubbed.to_json())


def test_tracing_is_off_unless_an_endpoint_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracing_configured()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert tracing_configured()
