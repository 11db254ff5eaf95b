"""A patient's contact email that is not the account's own gets case emails only once whoever
reads it confirmed it: a typo or a stranger's address never receives news of a medical case."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.utils.html import escape
from django_tenants.utils import tenant_context

from accounts.models import User
from intake.contact_email import LINK_INVALID, case_email_recipients
from intake.models import Case
from intake.tests.test_wizard import PATIENT_STEP, patient_user, signed_in
from tenants.models import Institution

pytestmark = pytest.mark.django_db


def _step_one(client: Client, case: Case, **changes: str) -> None:
    response = client.post(f"/cases/{case.public_id}/patient/", {**PATIENT_STEP, **changes})
    assert response.status_code == 302


def _link(email: mail.EmailMessage) -> str:
    match = re.search(r"https?://[^\s]+/contact/confirm/[^\s/]+/", str(email.body))
    assert match, email.body
    return match.group(0)


@pytest.fixture
def owner(neuro: Institution) -> User:
    return patient_user(neuro, "robin@family.example.com")


@pytest.fixture
def case(neuro: Institution, owner: User) -> Case:
    with tenant_context(neuro):
        return Case.objects.create(owner=owner)


def test_a_relatives_address_is_emailed_a_link_and_gets_updates_only_once_confirmed(
    neuro: Institution, owner: User, case: Case
) -> None:
    client = signed_in(neuro, owner)
    mail.outbox.clear()
    _step_one(client, case, patient_email="alex@example.com")
    [confirm] = mail.outbox
    assert confirm.to == ["alex@example.com"]
    link = _link(confirm)
    assert "alex" not in link and "example.com/" not in link.split("/contact/")[1]  # no address in the URL
    with tenant_context(neuro):
        case.refresh_from_db()
        assert case_email_recipients(case=case) == ["robin@family.example.com"]
    page = client.get(f"/cases/{case.public_id}/patient/").content.decode()
    assert "We sent a confirmation link to alex@example.com" in page

    # Opening the link changes nothing; the button confirms (no sign-in needed).
    stranger = Client(HTTP_HOST="neuro.localhost")
    path = "/" + link.split("/", 3)[3]
    assert "Confirm my email" in stranger.get(path).content.decode()
    with tenant_context(neuro):
        case.refresh_from_db()
        assert case.patient_email_confirmed_at is None
    assert "will now also be sent to alex@example.com" in stranger.post(path).content.decode()
    with tenant_context(neuro):
        case.refresh_from_db()
        assert case_email_recipients(case=case) == ["alex@example.com", "robin@family.example.com"]


def test_a_new_address_must_be_confirmed_again_and_the_old_link_dies(
    neuro: Institution, owner: User, case: Case
) -> None:
    client = signed_in(neuro, owner)
    _step_one(client, case, patient_email="alex@example.com")
    old = _link(mail.outbox[-1])
    Client(HTTP_HOST="neuro.localhost").post("/" + old.split("/", 3)[3])
    mail.outbox.clear()
    _step_one(client, case, patient_email="alex.new@example.com")
    [confirm] = mail.outbox
    assert confirm.to == ["alex.new@example.com"]
    with tenant_context(neuro):
        case.refresh_from_db()
        assert case_email_recipients(case=case) == ["robin@family.example.com"]
    response = Client(HTTP_HOST="neuro.localhost").get("/" + old.split("/", 3)[3])
    assert response.status_code == 404 and escape(LINK_INVALID) in response.content.decode()
    # Saving step 1 again with the same address sends nothing more.
    _step_one(client, case, patient_email="alex.new@example.com")
    assert len(mail.outbox) == 1


def test_the_accounts_own_address_needs_no_confirmation(neuro: Institution, owner: User, case: Case) -> None:
    mail.outbox.clear()
    _step_one(
        signed_in(neuro, owner), case, submitter_relation="self", patient_email="robin@family.example.com"
    )
    assert mail.outbox == []
    with tenant_context(neuro):
        case.refresh_from_db()
        assert case_email_recipients(case=case) == ["robin@family.example.com"]


def test_a_forged_or_foreign_link_is_refused(
    neuro: Institution, cancer: Institution, owner: User, case: Case
) -> None:
    _step_one(signed_in(neuro, owner), case, patient_email="alex@example.com")
    path = "/" + _link(mail.outbox[-1]).split("/", 3)[3]
    # The same link on another institution's site finds nothing there.
    response = Client(HTTP_HOST="cancer.localhost").post(path)
    assert response.status_code == 404 and escape(LINK_INVALID) in response.content.decode()
    tampered = path.replace("/confirm/", "/confirm/x")
    assert Client(HTTP_HOST="neuro.localhost").post(tampered).status_code == 404
    with tenant_context(neuro):
        case.refresh_from_db()
        assert case.patient_email_confirmed_at is None
