"""/healthz: is this process able to serve? Database, broker and storage, each checked live."""

from __future__ import annotations

import logging
import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger("config.health")


def _check_database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _check_broker() -> bool:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return bool(conn.connected)


def _check_storage() -> bool:
    from storage.backends import get_backend

    return get_backend().health_check()


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storage}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            ok = check()
        except Exception:
            logger.exception("health check failed", extra={"event": f"health.{name}"})
            ok = False
        results[name] = "ok" if ok else "failing"
        logger.debug(
            "health check",
            extra={"event": f"health.{name}", "duration_ms": int((time.monotonic() - started) * 1000)},
        )
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "failing", "checks": results}, status=200 if healthy else 503
    )
