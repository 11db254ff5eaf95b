"""The Celery policy: every task acknowledged late and given back when its worker dies, retried
on transient errors, never outlived by the broker's visibility timeout; each email task run
twice sends one email; and a task's failure leaves the patient's name in no log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core import mail
from django.db import OperationalError
from django_tenants.utils import schema_context, tenant_context

from config.celery_app import app
from config.logging import ContextFilter, JsonFormatter
from intake.models import Case
from outbox.models import OutboxMessage
from tenants.models import Institution
from tests.cases import case_make
from tests.outbox import outbox_deliver_all

PATIENT_NAME = "Jane Leaky-Testpatient"


def _our_tasks() -> dict[str, object]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_is_acknowledged_late_and_given_back_when_its_worker_dies() -> None:
    tasks = _our_tasks()
    assert "outbox.deliver" in tasks and "imaging.upload_ingest" in tasks
    assert all(task.acks_late for task in tasks.values())  # type: ignore[attr-defined]
    assert all(task.reject_on_worker_lost for task in tasks.values())  # type: ignore[attr-defined]


def test_every_task_retries_transient_errors() -> None:
    for name, task in _our_tasks().items():
        if name == "config.email_deliver":  # its own list (SMTP errors)
            continue
        assert OperationalError in task.autoretry_for, name  # type: ignore[attr-defined]


def test_the_visibility_timeout_outlasts_the_longest_task() -> None:
    limits = [task.time_limit or settings.CELERY_TASK_TIME_LIMIT for task in _our_tasks().values()]  # type: ignore[attr-defined]
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > max(limits)


@pytest.mark.django_db
def test_each_email_task_run_twice_sends_one_email(neuro: Institution, outbox_email: None) -> None:
    from intake.tasks import case_status_email
    from payments.models import Payment
    from payments.tasks import payment_receipt
    from review.models import FollowUpQuestion
    from review.tasks import follow_up_answer_email

    with tenant_context(neuro):
        case = case_make(status=Case.Status.SUBMITTED, with_files=False, number="NNI-TWICE1")
        payment = Payment.objects.create(
            case=case, status=Payment.Status.PAID, amount=10000, amount_paid=10000, currency="usd"
        )
        question = FollowUpQuestion.objects.create(
            case=case, asked_by=case.owner, question="Q?", answer="A.", answered_by=case.owner
        )
        FollowUpQuestion.objects.filter(pk=question.pk).update(answered_at=case.created)
        for _ in range(2):  # a task delivered twice (a worker died before acknowledging it)
            case_status_email.apply(args=(case.pk, Case.Status.SUBMITTED))
            payment_receipt.apply(args=(payment.pk,))
            follow_up_answer_email.apply(args=(question.pk,))
        ids = list(OutboxMessage.objects.values_list("pk", flat=True))
    assert len(ids) == 3
    from outbox.tasks import outbox_deliver

    with schema_context(neuro.schema_name):
        for _ in range(2):
            for message_id in ids:
                outbox_deliver.apply(args=(message_id,))
    assert outbox_deliver_all(neuro.schema_name) == 0
    assert len(mail.outbox) == 3


@pytest.fixture
def json_log_lines() -> Iterator[io.StringIO]:
    """Every log line, formatted as production writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@app.task(name="tests.fails_with_a_patient_name", ignore_result=True)
def _fails_with_a_patient_name(name: str) -> None:
    logging.getLogger("intake.tests").error("could not read %s: %s", "the file", ValueError(name))
    raise ValueError(f"cannot parse the report of {name}")


def test_a_failing_task_leaves_the_patient_name_in_no_log_line(json_log_lines: io.StringIO) -> None:
    _fails_with_a_patient_name.apply(args=(PATIENT_NAME,))
    lines = [json.loads(line) for line in json_log_lines.getvalue().splitlines()]
    assert any(
        line["logger"] == "celery.app.trace" and line.get("exception") == "ValueError" for line in lines
    )
    assert any("tests.fails_with_a_patient_name" in line["message"] for line in lines)
    assert not [line for line in lines if PATIENT_NAME in json.dumps(line)]
