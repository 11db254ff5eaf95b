"""The Celery app. Tenant-aware: every task published from a request or task running in an
institution's schema carries that schema (a ``_schema_name`` header, from
tenant-schemas-celery) and runs in it on the worker; nothing runs in the wrong schema.

Every task is retried with back-off on transient errors (``config.celery_tasks``); the policy
for a worker that dies mid-task is in the settings (acks late, rejected on worker loss)."""

from __future__ import annotations

import logging
import os

from celery import signals
from tenant_schemas_celery.app import CeleryApp

from config.celery_probes import install_worker_probe
from config.metrics import connect_task_signals, serve_metrics
from config.tracing import celery_tracing_connect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")


def _restore_unacked_tolerant() -> None:
    """kombu's Redis transport raised AttributeError (its pool already gone) restoring the
    unacknowledged messages of a connection Redis had dropped, and the worker died
    ("Unrecoverable error") whenever Redis went away while it held a task with a countdown.
    Restoring cannot work without Redis anyway, and nothing is lost: with ack emulation those
    messages are still in Redis's unacked index and come back after the visibility timeout
    (and the sweeps requeue their work sooner). So: log and keep the worker reconnecting."""
    from kombu.transport.virtual import base

    original = base.QoS.restore_unacked_once
    if getattr(original, "tolerant", False):
        return

    def restore_unacked_once(self: base.QoS, stderr: object = None) -> object:
        try:
            return original(self, stderr)
        except Exception as exc:
            logging.getLogger(__name__).warning(
                "unacknowledged messages not restored (broker gone): %s", type(exc).__name__
            )
            return None

    restore_unacked_once.tolerant = True  # type: ignore[attr-defined]
    base.QoS.restore_unacked_once = restore_unacked_once  # type: ignore[method-assign]


_restore_unacked_tolerant()
app = CeleryApp("secondread", task_cls="config.celery_tasks:SecondReadTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
install_worker_probe(app)
connect_task_signals()
celery_tracing_connect()


@signals.worker_init.connect(weak=False)
def _serve_worker_metrics(**kwargs: object) -> None:
    """The worker's metrics endpoint, in its main process (the pool's children write files)."""
    from django.conf import settings

    if settings.METRICS_PORT:
        serve_metrics(settings.METRICS_PORT, settings.METRICS_TOKEN)


# After tenant-schemas-celery's own task_prerun handler (connected when its app module was
# imported above) has switched to the task's schema: the task's dates (emails, PDFs, due
# dates) are in its institution's time zone, and the next task starts from UTC again.
@signals.task_prerun.connect(weak=False)
def _institution_time_zone_for_task(**kwargs: object) -> None:
    from django.db import connection

    from tenants.timezones import institution_time_zone_activate

    institution_time_zone_activate(getattr(connection, "tenant", None))


@signals.task_postrun.connect(weak=False)
def _time_zone_after_task(**kwargs: object) -> None:
    from tenants.timezones import institution_time_zone_activate

    institution_time_zone_activate(None)


@signals.task_postrun.connect(weak=False)
def _database_connections_checked(task: object = None, **kwargs: object) -> None:
    """After a task, as after a request: a connection that failed, outlived CONN_MAX_AGE or
    served DB_CONN_MAX_SCHEMAS schemas is closed; any other is kept for the next task (Celery's
    fix-up would close it, see CELERY_DB_REUSE_MAX) and health-checked before its first query,
    so a database restarted between two tasks costs neither of them. Not for a task run eagerly
    (inside a caller's transaction, which closing would end)."""
    from django.db import close_old_connections

    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    close_old_connections()
