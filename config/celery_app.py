"""The Celery app. Tenant-aware: every task published from a request or task running in an
institution's schema carries that schema (a ``_schema_name`` header, from
tenant-schemas-celery) and runs in it on the worker; nothing runs in the wrong schema."""

from __future__ import annotations

import os

from tenant_schemas_celery.app import CeleryApp

from config.celery_probes import install_worker_probe

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = CeleryApp("secondread")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
install_worker_probe(app)
