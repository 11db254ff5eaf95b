"""The base of every task of ours: tenant-aware (tenant-schemas-celery) and retried with
back-off when what failed is transient (the database or the broker was unreachable for a
moment), as the Celery policy in the settings expects of tasks that are safe to run twice.

A task's own ``autoretry_for`` replaces this one; nothing else about a task changes.
"""

from __future__ import annotations

import kombu.exceptions
import redis.exceptions
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from tenant_schemas_celery.task import TenantTask

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseOperationalError,  # PostgreSQL restarting, PgBouncer full, a dropped connection
    DatabaseInterfaceError,  # a connection closed under us
    kombu.exceptions.OperationalError,  # the broker, when a task queues another
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class SecondReadTask(TenantTask):
    abstract = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 5  # 5 s, 10 s, 20 s, … (with jitter)
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 6
