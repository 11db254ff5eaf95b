"""Structured (JSON lines) logging that never carries patient data.

A record keeps only its level, logger, message, the tenant schema and, for errors, the
exception type and traceback frames of our own code. Request objects, POST bodies and
arbitrary ``extra`` values are dropped on purpose: anything a view attaches to a log call could
be patient data, so only keys listed in ``SAFE_EXTRA_KEYS`` pass.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

SAFE_EXTRA_KEYS = frozenset(
    {"event", "task", "task_id", "status", "duration_ms", "count", "institution", "object_id"}
)


class ContextFilter(logging.Filter):
    """Adds the current tenant schema to every record (never a user or patient name)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            from django.db import connection

            record.schema = getattr(connection, "schema_name", None)
        except Exception:  # before Django is set up
            record.schema = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        schema = getattr(record, "schema", None)
        if schema:
            entry["schema"] = schema
        for key in SAFE_EXTRA_KEYS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: its message may quote a value (a name, a file name).
            entry["exception"] = record.exc_info[0].__name__
            entry["frames"] = _own_frames(record)
        return json.dumps(entry, default=str)


_OWN_LOGGERS = (
    "config",
    "tenants",
    "branding",
    "accounts",
    "imaging",
    "intake",
    "review",
    "storage",
    "audit",
    "payments",
    "celery",
)


def _message(record: logging.LogRecord) -> str:
    """Our own messages are written without patient data. Third-party messages with
    arguments may interpolate request data (a path, a host): keep their template only."""
    if record.name.split(".")[0] in _OWN_LOGGERS:
        return record.getMessage()
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    status = getattr(record, "status_code", None)
    return f"{template} [status={status}]" if status else template


def _own_frames(record: logging.LogRecord) -> list[str]:
    import traceback

    assert record.exc_info is not None
    frames = traceback.extract_tb(record.exc_info[2])
    return [f"{'/'.join(f.filename.rsplit('/', 2)[-2:])}:{f.lineno} in {f.name}" for f in frames][-8:]
