"""Sweeps across institutions: one task walks them in batches on the housekeeping queue;
patient-facing work keeps its own queue; every task has time limits; results are kept only
where a caller reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from config.celery_app import app
from tenants.models import Institution
from tenants.schema import current_schema_name
from tenants.selectors import institution_schemas_live
from tenants.sweeps import institutions_sweep

pytestmark = pytest.mark.django_db

PATIENT_FACING = (
    "imaging.upload_ingest",
    "imaging.series_preview",
    "intake.case_status_email",
    "review.follow_up_answer_email",
    "payments.payment_receipt",
    "payments.payment_refund_notice",
    "tenants.institution_go_live",
    "outbox.deliver",
)
HOUSEKEEPING = (
    "imaging.uploads_ingest_resume_all",
    "imaging.uploads_ingest_resume",
    "intake.tus.uploads_expire_all",
    "intake.tus.uploads_expire",
    "tenants.institution_usage_refresh",
    "tenants.onboardings_discard_abandoned",
    "outbox.sweep",
    "tenants.onboardings_recover",
)


def _queue_of(task_name: str) -> str:
    return str(app.amqp.router.route({}, task_name)["queue"].name)


def test_it_routes_patient_facing_work_and_housekeeping_to_different_queues() -> None:
    for name in PATIENT_FACING:
        assert _queue_of(name) == settings.CELERY_TASK_DEFAULT_QUEUE, name
    for name in HOUSEKEEPING:
        assert _queue_of(name) == settings.CELERY_HOUSEKEEPING_QUEUE, name


def test_every_task_has_time_limits_and_keeps_results_only_when_read() -> None:
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert set(PATIENT_FACING) | set(HOUSEKEEPING) <= set(ours)
    for name, task in ours.items():
        assert task.soft_time_limit and task.time_limit and task.soft_time_limit < task.time_limit, name
        assert task.ignore_result is (name != "intake.tus.uploads_expire"), name


def test_it_visits_each_institution_with_a_schema_once_in_batches(neuro: Institution) -> None:
    Institution.objects.create(
        name="Draft", slug="draft-sweep", schema_name="inst_sweep_draft", status="draft"
    )
    visited: list[str] = []

    def work() -> None:
        visited.append(current_schema_name())

    after = institutions_sweep(after="", work=work, batch=1)
    assert visited == ["cancer"] and after == "cancer"
    after = institutions_sweep(after=after, work=work, batch=1)
    assert visited == ["cancer", "neuro"] and after == "neuro"
    # The draft has no schema: never visited; the sweep is complete.
    assert institutions_sweep(after=after, work=work, batch=1) is None
    assert visited == ["cancer", "neuro"]
    assert current_schema_name() == "public"


def test_one_failing_institution_does_not_stop_the_sweep() -> None:
    visited: list[str] = []

    def work() -> None:
        if current_schema_name() == "cancer":
            raise RuntimeError("this institution's sweep fails")
        visited.append(current_schema_name())

    assert institutions_sweep(after="", work=work, batch=10) is None
    assert visited == ["neuro"]


@pytest.fixture
def housekeeping_queue() -> Iterator[redis.Redis]:
    # Kombu spells an embedded Redis socket redis+socket://; the redis client, unix://.
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL.replace("redis+socket://", "unix://", 1))
    broker.delete(settings.CELERY_HOUSEKEEPING_QUEUE)
    yield broker
    broker.delete(settings.CELERY_HOUSEKEEPING_QUEUE)


def test_a_beat_sweep_queues_its_own_continuation_not_a_task_per_institution(
    housekeeping_queue: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imaging.tasks import uploads_ingest_resume_all

    monkeypatch.setattr("tenants.sweeps.SWEEP_BATCH", 1)
    # The first live institution by schema name: "cancer" of the demo, unless a test running
    # in the same database left one that sorts before it.
    first = institution_schemas_live(after="", limit=1)
    uploads_ingest_resume_all.apply(args=("",))
    messages = [
        json.loads(raw) for raw in housekeeping_queue.lrange(settings.CELERY_HOUSEKEEPING_QUEUE, 0, -1)
    ]
    assert [(m["headers"]["task"], json.loads(_body(m))[0]) for m in messages] == [
        ("imaging.uploads_ingest_resume_all", first)
    ]


def _body(message: dict[str, object]) -> str:
    import base64

    body = message["body"]
    assert isinstance(body, str)
    return base64.b64decode(body).decode()
