"""A patient on a phone asks for a link to continue on a computer (issue 14, item 10): it goes
to their own address only, links to the request's images step, and nobody else can ask for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from config.celery_app import app as celery_app
from intake.models import Case
from intake.notifications import CONTINUE_LINK_SUBJECT
from intake.tests.test_wizard import new_case, patient_user, signed_in
from tenants.models import Institution


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_it_emails_the_filer_a_link_to_the_images_step(
    neuro: Institution, django_capture_on_commit_callbacks: Any, eager_tasks: None
) -> None:
    patient = patient_user(neuro)
    case = new_case(neuro, patient, patient_email="someone@family.example.com", consented_at=timezone.now())
    client = signed_in(neuro, patient)
    page = client.get(f"/cases/{case.public_id}/images/").content.decode()
    assert 'data-testid="phone-help"' in page and "zip file saved on it" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/cases/{case.public_id}/continue-link/", follow=True)
    assert f"We have emailed a link to {patient.email}" in response.content.decode()
    (email,) = mail.outbox
    assert email.to == [patient.email] and email.subject == str(CONTINUE_LINK_SUBJECT)
    assert f"/cases/{case.public_id}/images/" in email.body


def test_it_sends_no_link_for_a_sent_case(
    neuro: Institution, django_capture_on_commit_callbacks: Any
) -> None:
    patient = patient_user(neuro)
    case = new_case(neuro, patient, status=Case.Status.SUBMITTED)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = signed_in(neuro, patient).post(f"/cases/{case.public_id}/continue-link/")
    assert response["Location"] == f"/cases/{case.public_id}/"
    assert callbacks == [] and mail.outbox == []


def test_it_keeps_outsiders_from_asking_for_a_link(
    neuro: Institution, cancer: Institution, neuro_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    case = new_case(neuro, patient_user(neuro))
    stranger = signed_in(neuro, patient_user(neuro))
    other_tenant = signed_in(cancer, patient_user(cancer))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert stranger.post(f"/cases/{case.public_id}/continue-link/").status_code == 404
        assert other_tenant.post(f"/cases/{case.public_id}/continue-link/").status_code == 404
        response = neuro_client.post(f"/cases/{case.public_id}/continue-link/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        assert stranger.get(f"/cases/{case.public_id}/continue-link/").status_code == 405
    assert callbacks == []
