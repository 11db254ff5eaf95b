"""The beat task behind the gauges of config.metrics (a module of its own: the Celery app
imports config.metrics at start-up, before tasks may be declared on it)."""

from __future__ import annotations

from config.celery_app import app
from config.metrics import metrics_refresh


@app.task(name="config.metrics_refresh", ignore_result=True)
def metrics_refresh_task() -> None:
    metrics_refresh()
