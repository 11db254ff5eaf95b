"""The base of every task of ours: tenant-aware (tenant-schemas-celery) and retried with
back-off when what failed is transient (the database or the broker was unreachable for a
moment), as the Celery policy in the settings expects of tasks that are safe to run twice.

A task's own ``autoretry_for`` replaces this one; nothing else about a task changes.

A task runs in the schema it was queued from, or not at all. tenant-schemas-celery switches
to it in a ``task_prerun`` signal handler, and Celery logs and ignores a handler's errors: with
the database unreachable at that moment (PostgreSQL restarting) or the institution deleted
since, the task ran on in the public schema, where it could read or change the wrong rows.
``SecondReadTask`` checks the schema before the task's body runs.
"""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery.utils.time import get_exponential_backoff_interval
from django.core.exceptions import ObjectDoesNotExist
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.db import connection
from django_tenants.utils import get_public_schema_name
from tenant_schemas_celery.app import get_schema_name_from_task, switch_schema
from tenant_schemas_celery.task import TenantTask

logger = logging.getLogger(__name__)

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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request.called_directly:  # a plain function call (tests, code calling it inline)
            return super().__call__(*args, **kwargs)
        # Run by a worker (or apply()): the request is Celery's, with the task's headers.
        if not self._in_its_schema(kwargs):
            return None
        return self.run(*args, **kwargs)

    def _in_its_schema(self, kwargs: dict[str, Any]) -> bool:
        """Whether the connection is on the schema the task was queued from, switching to it
        if the signal handler could not. Retries the task if the database is unreachable;
        False (the task is dropped, with a warning) if its institution is gone."""
        wanted = get_schema_name_from_task(self, kwargs) or get_public_schema_name()
        if connection.schema_name == wanted:  # type: ignore[attr-defined]  # django-tenants' connection
            return True
        try:
            switch_schema(self, kwargs)
        except ObjectDoesNotExist:
            logger.warning(
                "task dropped: the institution it was queued for is gone",
                extra={"event": "task.schema_gone", "task": self.name},
            )
            return False
        except TRANSIENT_ERRORS as exc:
            countdown = get_exponential_backoff_interval(
                factor=self.retry_backoff,
                retries=self.request.retries,
                maximum=self.retry_backoff_max,
                full_jitter=self.retry_jitter,
            )
            raise self.retry(exc=exc, countdown=countdown) from exc
        return bool(connection.schema_name == wanted)  # type: ignore[attr-defined]
