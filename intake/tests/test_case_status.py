"""Case state changes email the patient, branded, once per move, through the outbox."""

from __future__ import annotations

from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from intake.models import Case
from intake.status import case_number_assign
from intake.workflow import case_status_change
from outbox.models import OutboxMessage
from tenants.models import Institution


def _case(institution: Institution) -> Case:
    owner = User.objects.get(email=f"patient@{institution.slug}.example.com")
    # A relative's address, confirmed (intake.contact_email): emailed with the account's.
    return Case.objects.create(
        owner=owner,
        patient_name="Pat Patient",
        patient_email="pat@family.example.com",
        patient_email_confirmed_at=timezone.now(),
    )


def test_it_emails_the_patient_in_the_institutions_name(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = _case(neuro)
        case_number_assign(case=case, prefix="NNI")
        case_status_change(case=case, status=Case.Status.SUBMITTED)
    # One email per recipient (each greeted by their own name): the account and the patient
    # (staff are told about the new case too).
    patient_side = [m for m in mail.outbox if "received" in str(m.subject)]
    assert sorted(address for message in patient_side for address in message.to) == [
        "pat@family.example.com",
        "patient@neuro.example.com",
    ]
    email = patient_side[0]
    assert isinstance(email, EmailMultiAlternatives)
    assert email.from_email.startswith("Northfield Neurological Institute <")
    assert str(case.number) in str(email.subject)
    html = str(email.alternatives[0][0])
    assert "#4b2e83" in html and "Northfield Neurological Institute" in html
    assert "has received your request" in email.body


def test_it_writes_one_email_per_move_to_the_outbox(neuro: Institution, settings: SettingsWrapper) -> None:
    settings.EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
    with tenant_context(neuro):
        case = _case(neuro)
        case_status_change(case=case, status=Case.Status.SUBMITTED)
        case_status_change(case=case, status=Case.Status.SUBMITTED)  # a repeated call
        case_status_change(case=case, status=Case.Status.ASSIGNED)  # staff-only state
        summaries = list(OutboxMessage.objects.values_list("summary", flat=True))
    # To the account and to the patient (and the staff's own notice of a new case).
    assert [s for s in summaries if "received" in s] == ["Your case has been received"] * 2
    assert mail.outbox == []  # sent by the worker, not here


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
    email = next(m for m in mail.outbox if "received" in str(m.subject))
    assert email.from_email.startswith('"Northfield, Inc." <')
