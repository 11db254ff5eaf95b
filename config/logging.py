"""Structured (JSON lines) logging that never carries patient data.

A record keeps only its level, logger, message, the tenant schema and, for errors, the
exception type and traceback frames of our own code. Request objects, POST bodies and
arbitrary ``extra`` values are dropped on purpose: anything a view attaches to a log call could
be patient data, so only keys listed in ``SAFE_EXTRA_KEYS`` pass.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
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
    "institutions",
    "tenants",
    "branding",
    "accounts",
    "imaging",
    "intake",
    "review",
    "storage",
    "audit",
    "payments",
    "outbox",
    "exports",
)


# Celery's own log lines interpolate a dict of values; these name the task, never its data.
# Its failure lines also carry "exc", "args", "kwargs" and "traceback", and its success lines
# "return_value": any of them may quote patient data, so they are left out.
_CELERY_SAFE_ARGS = frozenset({"name", "id", "runtime", "hostname", "description", "internal"})


def _message(record: logging.LogRecord) -> str:
    """The message without values that may be patient data.

    Celery's and kombu's messages keep only the safe values of their arguments. Our own
    messages are written without patient data, but an exception passed as an argument carries
    whatever text its raiser put in it (a file name, a patient's name): it is shown as its type.
    Other libraries' messages with arguments may interpolate request data (a path, a host):
    their template only."""
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    root = record.name.split(".")[0]
    if root in ("celery", "kombu"):
        if isinstance(record.args, Mapping):
            safe = {key: value if key in _CELERY_SAFE_ARGS else "[…]" for key, value in record.args.items()}
            return _interpolated(template, safe)
        return template
    if root in _OWN_LOGGERS:
        if isinstance(record.args, Mapping):
            return _interpolated(template, {key: _safe_value(value) for key, value in record.args.items()})
        if record.args:
            return _interpolated(template, tuple(_safe_value(value) for value in record.args))
        return template
    status = getattr(record, "status_code", None)
    return f"{template} [status={status}]" if status else template


def _safe_value(value: object) -> object:
    return type(value).__name__ if isinstance(value, BaseException) else value


def _interpolated(template: str, args: Mapping[str, object] | tuple[object, ...]) -> str:
    try:
        return template % args
    except (TypeError, ValueError, KeyError):
        return template


def _own_frames(record: logging.LogRecord) -> list[str]:
    import traceback

    assert record.exc_info is not None
    frames = traceback.extract_tb(record.exc_info[2])
    return [f"{'/'.join(f.filename.rsplit('/', 2)[-2:])}:{f.lineno} in {f.name}" for f in frames][-8:]
