"""Case state changes email the patient, branded, once."""

from __future__ import annotations

from typing import Any

from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django_tenants.utils import tenant_context

from accounts.models import User
from intake.models import Case
from intake.notifications import case_status_email_send
from intake.status import case_number_assign, case_status_change
from tenants.models import Institution


def _case(institution: Institution) -> Case:
    owner = User.objects.get(email=f"patient@{institution.slug}.example.com")
    return Case.objects.create(
        owner=owner, patient_name="Pat Patient", patient_email="pat@family.example.com"
    )


def test_it_emails_the_patient_in_the_institutions_name(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = _case(neuro)
        case_number_assign(case=case, prefix="NNI")
        case_status_change(case=case, status=Case.Status.SUBMITTED)
        assert case_status_email_send(case_id=case.pk, status=Case.Status.SUBMITTED)
    (email,) = mail.outbox
    assert isinstance(email, EmailMultiAlternatives)
    assert email.from_email.startswith("Northfield Neurological Institute <")
    assert sorted(email.to) == ["pat@family.example.com", "patient@neuro.example.com"]
    assert str(case.number) in str(email.subject)
    html = str(email.alternatives[0][0])
    assert "#4b2e83" in html and "Northfield Neurological Institute" in html
    assert "has received your request" in email.body


def test_it_queues_one_email_per_change(neuro: Institution, django_capture_on_commit_callbacks: Any) -> None:
    with tenant_context(neuro):
        case = _case(neuro)
        with django_capture_on_commit_callbacks() as callbacks:
            case_status_change(case=case, status=Case.Status.SUBMITTED)
            case_status_change(case=case, status=Case.Status.SUBMITTED)
            case_status_change(case=case, status=Case.Status.ASSIGNED)  # staff-only state
    assert len(callbacks) == 1


def test_it_sends_nothing_when_the_case_moved_on(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = _case(neuro)
        case_status_change(case=case, status=Case.Status.IN_REVIEW)
        assert not case_status_email_send(case_id=case.pk, status=Case.Status.SUBMITTED)
    assert mail.outbox == []


def test_it_numbers_cases_once(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = _case(neuro)
        first = case_number_assign(case=case, prefix="NNI")
        assert case_number_assign(case=case, prefix="NNI") == first
        assert first.startswith("NNI-")


def test_it_quotes_an_institution_name_with_a_comma(neuro: Institution) -> None:
    neuro.name = "Northfield, Inc."
    neuro.save(update_fields=["name"])
    with tenant_context(neuro):
        case = _case(neuro)
        case_number_assign(case=case, prefix="NNI")
        case_status_change(case=case, status=Case.Status.SUBMITTED)
        assert case_status_email_send(case_id=case.pk, status=Case.Status.SUBMITTED)
    (email,) = mail.outbox
    assert email.from_email.startswith('"Northfield, Inc." <')
