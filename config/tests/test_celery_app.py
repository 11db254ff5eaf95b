"""Every task of ours is bound to the tenant-aware Celery app (declared with ``shared_task``, so
the apps do not import ``config``), and so carries and restores the schema it was queued from."""

from __future__ import annotations

from tenant_schemas_celery.task import TenantTask

from config.celery_app import app

OUR_APPS = (
    "accounts.",
    "imaging.",
    "institutions.",
    "intake.",
    "outbox.",
    "payments.",
    "review.",
    "tenants.",
)


def test_it_makes_every_product_task_tenant_aware() -> None:
    app.loader.import_default_modules()  # autodiscovery, as a worker does at start
    ours = {name: task for name, task in app.tasks.items() if name.startswith(OUR_APPS)}
    # One of each app with tasks at least (the tus sweep lives outside intake.tasks: imported with
    # its app). accounts has none since its test-only heartbeat went.
    assert {name.split(".")[0] for name in ours} >= {"imaging", "intake", "payments", "review", "tenants"}
    assert "imaging.upload_ingest" in ours
    not_tenant_aware = [name for name, task in ours.items() if not isinstance(task, TenantTask)]
    assert not_tenant_aware == []
