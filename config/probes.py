"""Probes for orchestrators: ``/livez``, ``/readyz`` and ``/healthz``, answered on any host.

- ``/livez``: the process runs and can answer (no dependency is touched). A failing liveness
  probe restarts the pod, so a database outage must never fail it.
- ``/readyz``: the database and the broker answer, each within a sub-second deadline. A
  failing readiness probe only takes the pod out of the load balancer.
- ``/healthz``: readiness plus storage (kept for the launcher and uptime monitors).

``ProbeMiddleware`` is the first middleware: probes are answered before the tenant middleware
looks the host up in the database, so with the database down they still answer JSON (503
naming what failed) instead of an HTML 500. None of them writes anything.

Each check runs in a short-lived thread and is abandoned after ``PROBE_TIMEOUT_MS``: a
socket that hangs (a firewall dropping packets) would otherwise hang the probe for minutes.
The database check opens its own connection (``connect_timeout``) and closes it, so it never
holds one of the request threads' pooled connections.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("config.probes")


def database_params() -> dict[str, object]:
    """libpq parameters of the configured database, with a short connect timeout."""
    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "connect_timeout": 2,  # libpq's minimum; the probe's own deadline is shorter anyway
    }
    return {key: value for key, value in params.items() if value not in (None, "")}


def check_database() -> bool:
    import psycopg

    with psycopg.connect(**database_params()) as conn, conn.cursor() as cursor:  # type: ignore[arg-type]
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def check_broker() -> bool:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.PROBE_TIMEOUT_MS / 1000)
        return bool(conn.connected)


def check_storage() -> bool:
    from storage.backends import get_backend

    return get_backend().health_check()


READINESS: dict[str, Callable[[], bool]] = {"database": check_database, "broker": check_broker}
HEALTH: dict[str, Callable[[], bool]] = {**READINESS, "storage": check_storage}


def run_checks(checks: dict[str, Callable[[], bool]]) -> tuple[bool, dict[str, str]]:
    """Run every check at once in its own thread; a check still running at the deadline is
    reported as "timeout" and left to finish (or fail) on its own."""
    results: dict[str, str] = {}

    def run(name: str, check: Callable[[], bool]) -> None:
        try:
            results[name] = "ok" if check() else "failing"
        except Exception as error:
            # The type only: a driver's message may quote a host name or a user.
            logger.warning("probe failed", extra={"event": f"probe.{name}", "status": type(error).__name__})
            results[name] = "failing"

    deadline = time.monotonic() + settings.PROBE_TIMEOUT_MS / 1000
    threads = [
        threading.Thread(target=run, args=(name, check), name=f"probe-{name}", daemon=True)
        for name, check in checks.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    answered = {name: results.get(name, "timeout") for name in checks}
    return all(value == "ok" for value in answered.values()), answered


def _json(payload: dict[str, object], status: int) -> HttpResponse:
    response = HttpResponse(json.dumps(payload), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    return response


def livez() -> HttpResponse:
    return _json({"status": "ok"}, 200)


def checked(checks: dict[str, Callable[[], bool]]) -> HttpResponse:
    healthy, results = run_checks(checks)
    return _json({"status": "ok" if healthy else "failing", "checks": results}, 200 if healthy else 503)


PROBES: dict[str, Callable[[], HttpResponse]] = {
    "/livez": livez,
    "/readyz": lambda: checked(READINESS),
    "/healthz": lambda: checked(HEALTH),
}


class ProbeMiddleware:
    """Answers the probe paths (GET or HEAD, any host) before anything touches the database."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe()
        return self.get_response(request)
