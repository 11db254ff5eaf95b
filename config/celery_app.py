"""The Celery app. Tenant-aware: every task published from a request or task running in an
institution's schema carries that schema (a ``_schema_name`` header, from
tenant-schemas-celery) and runs in it on the worker; nothing runs in the wrong schema.

Every task is retried with back-off on transient errors (``config.celery_tasks``); the policy
for a worker that dies mid-task is in the settings (acks late, rejected on worker loss)."""

from __future__ import annotations

import os

from celery import signals
from tenant_schemas_celery.app import CeleryApp

from config.celery_probes import install_worker_probe
from config.metrics import connect_task_signals, serve_metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = CeleryApp("secondread", task_cls="config.celery_tasks:SecondReadTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
install_worker_probe(app)
connect_task_signals()


@signals.worker_init.connect(weak=False)
def _serve_worker_metrics(**kwargs: object) -> None:
    """The worker's metrics endpoint, in its main process (the pool's children write files)."""
    from django.conf import settings

    if settings.METRICS_PORT:
        serve_metrics(settings.METRICS_PORT, settings.METRICS_TOKEN)
