"""Going live: the schema is cloned from the template, the admin account created there, the
address routed, invitations sent (branded) and accepted on the institution's own domain; a
failure leaves nothing half-made."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django_tenants.utils import schema_context, schema_exists

from accounts.models import User
from institutions.invitations import INVITATION_ACCEPTED, INVITATION_INVALID, INVITATION_USED
from institutions.provisioning import GO_LIVE_ADDRESS_TAKEN, institution_go_live
from institutions.tests.helpers import PASSWORD, applicant_sign_up, png_bytes
from tenants.models import Domain, Institution, InstitutionSettings, Invitation, Onboarding

EMAIL = "grace@northgate.example.org"


def _walk_wizard(client: Client, capture: Any, slug: str = "northgate") -> Onboarding:
    applicant_sign_up(client, capture, email=EMAIL, name="Northgate Imaging")
    client.post("/start/step/subdomain/", {"slug": slug})
    logo = SimpleUploadedFile("logo.png", png_bytes(colour="#aa2200"), content_type="image/png")
    client.post(
        "/start/step/branding/",
        {"primary_colour": "#5b2a86", "accent_colour": "#006d5b", "tagline": "", "welcome_text": "Hello",
         "support_email": "help@northgate.example.org", "support_phone": "", "logo": logo},
    )  # fmt: skip
    client.post("/start/step/texts/", {"consent_text": "I agree", "terms_text": "", "privacy_text": ""})
    client.post("/start/step/fee/", {"fee_currency": "usd"})
    client.post("/start/step/service/", {"turnaround_business_days": "6", "specialties": "Neuroradiology"})
    client.post(
        "/start/step/team/", {"action": "invite", "email": "rev@northgate.example.org", "is_reviewer": "on"}
    )
    client.post("/start/step/team/", {"action": "continue"})
    client.post("/start/step/website/", {"embed_origins": "https://www.northgate.example.org"})
    with capture(execute=False):  # the Celery task is run in-process below instead
        client.post("/start/step/go-live/")
    return Onboarding.objects.get(email=EMAIL)


@pytest.fixture
def queued(platform_client: Client, django_capture_on_commit_callbacks: Any) -> Onboarding:
    onboarding = _walk_wizard(platform_client, django_capture_on_commit_callbacks)
    assert onboarding.state == Onboarding.State.QUEUED
    return onboarding


def test_it_goes_live_with_a_cloned_schema_an_admin_and_a_routed_address(queued: Onboarding) -> None:
    started = time.monotonic()
    assert institution_go_live(onboarding_id=queued.pk)
    print(f"\ngo-live in-process: {time.monotonic() - started:.2f} s")
    institution = Institution.objects.get(slug="northgate")
    assert institution.status == Institution.Status.ACTIVE
    assert Domain.objects.filter(domain="northgate.localhost", tenant=institution).exists()
    with schema_context(institution.schema_name):
        admin = User.objects.get(email=EMAIL)
        assert admin.is_institution_admin and admin.check_password(PASSWORD)
        from review.models import ReviewSettings

        assert ReviewSettings.objects.exists()
    # The promise made at onboarding is the one the workspace uses (its one home).
    assert InstitutionSettings.objects.get(institution=institution).turnaround_business_days == 6
    queued.refresh_from_db()
    assert (queued.state, queued.progress) == (Onboarding.State.LIVE, 100)
    # running the task again does nothing
    assert not institution_go_live(onboarding_id=queued.pk)
    # the portal is up, branded
    page = Client(HTTP_HOST="northgate.localhost").get("/").content.decode()
    assert "Northgate Imaging" in page and "--brand-primary:#5b2a86" in page


def test_it_clones_the_audit_triggers_with_the_schema(queued: Onboarding) -> None:
    institution_go_live(onboarding_id=queued.pk)
    schema = Institution.objects.get(slug="northgate").schema_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = %s "
            "AND event_object_table = 'audit_auditevent'",
            [schema],
        )
        assert cursor.fetchone()[0] >= 2


@override_settings(INSTITUTIONS_NEED_APPROVAL=True)
def test_it_waits_for_approval_when_the_platform_requires_it(queued: Onboarding) -> None:
    institution_go_live(onboarding_id=queued.pk)
    assert Institution.objects.get(slug="northgate").status == Institution.Status.PENDING
    assert "not open yet" in Client(HTTP_HOST="northgate.localhost").get("/").content.decode()


def test_it_leaves_nothing_half_made_when_the_address_was_taken_meanwhile(
    queued: Onboarding, neuro: Institution
) -> None:
    Domain.objects.create(domain="northgate.localhost", tenant=neuro, is_primary=False)
    assert not institution_go_live(onboarding_id=queued.pk)
    institution = Institution.objects.get(slug="northgate")
    assert institution.status == Institution.Status.DRAFT
    assert not schema_exists(institution.schema_name)
    assert not Domain.objects.filter(tenant=institution).exists()
    queued.refresh_from_db()
    assert queued.state == Onboarding.State.FAILED
    assert GO_LIVE_ADDRESS_TAKEN in queued.progress_message


def test_it_leaves_nothing_half_made_when_a_later_step_fails(
    queued: Onboarding, monkeypatch: pytest.MonkeyPatch
) -> None:
    from institutions import provisioning

    original = provisioning._administrator_create

    def admin_create_twice(*, onboarding: Onboarding) -> None:
        original(onboarding=onboarding)
        original(onboarding=onboarding)  # a real IntegrityError (the email is unique)

    monkeypatch.setattr(provisioning, "_administrator_create", admin_create_twice)
    assert not institution_go_live(onboarding_id=queued.pk)
    institution = Institution.objects.get(slug="northgate")
    assert not schema_exists(institution.schema_name)
    assert not Domain.objects.filter(tenant=institution).exists()
    assert institution.status == Institution.Status.DRAFT
    queued.refresh_from_db()
    assert queued.state == Onboarding.State.FAILED and "try again" in queued.progress_message


def _invitation_path() -> str:
    message = next(m for m in reversed(mail.outbox) if m.to == ["rev@northgate.example.org"])
    link = re.search(r"http://\S+/invitations/\S+/", str(message.body))
    assert link, message.body
    assert urlsplit(link.group(0)).hostname == "northgate.localhost"
    return urlsplit(link.group(0)).path


def test_it_sends_branded_invitations_accepted_once_on_the_institutions_domain(queued: Onboarding) -> None:
    institution_go_live(onboarding_id=queued.pk)
    message = next(m for m in reversed(mail.outbox) if m.to == ["rev@northgate.example.org"])
    html = str(message.alternatives[0][0])  # type: ignore[attr-defined]
    assert message.from_email.startswith("Northgate Imaging <")
    assert "background:#5b2a86" in html and "brand/logo.png" in html and "Northgate Imaging" in message.body
    path = _invitation_path()

    # not on another institution's domain
    assert Client(HTTP_HOST="neuro.localhost").get(path).status_code == 400
    site = Client(HTTP_HOST="northgate.localhost")
    assert "Join Northgate Imaging" in site.get(path).content.decode()
    response = site.post(
        path, {"full_name": "Dr Rita Reviewer", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    institution = Institution.objects.get(slug="northgate")
    with schema_context(institution.schema_name):
        reviewer = User.objects.get(email="rev@northgate.example.org")
        assert reviewer.is_reviewer and not reviewer.is_institution_admin
    with schema_context("neuro"):
        assert not User.objects.filter(email="rev@northgate.example.org").exists()
    # Signed in with the password just chosen: on to the workspace, which has a new staff member
    # set up an authenticator first, without asking for that password again.
    assert response["Location"] == "/workspace/"
    setup = site.get("/workspace/", follow=True)
    assert setup.redirect_chain[-1][0].startswith("/accounts/2fa/totp/activate/")
    page = setup.content.decode()
    assert setup.status_code == 200 and INVITATION_ACCEPTED in page and 'name="code"' in page
    # single use
    again = Client(HTTP_HOST="northgate.localhost").get(path)
    assert again.status_code == 400 and INVITATION_USED in again.content.decode()


def test_it_refuses_forged_and_expired_invitations(queued: Onboarding) -> None:
    institution_go_live(onboarding_id=queued.pk)
    site = Client(HTTP_HOST="northgate.localhost")
    forged = site.get("/invitations/bm90LWEtdG9rZW4/")
    assert forged.status_code == 400 and INVITATION_INVALID in forged.content.decode()
    path = _invitation_path()
    Invitation.objects.update(expires="2000-01-01T00:00:00Z")
    assert "expired" in site.get(path).content.decode()


@override_settings(INSTITUTIONS_NEED_APPROVAL=True)
def test_a_pending_institution_lets_its_staff_set_up_but_no_patient_in(queued: Onboarding) -> None:
    from tests.staff import staff_force_login

    institution_go_live(onboarding_id=queued.pk)
    site = Client(HTTP_HOST="northgate.localhost")
    assert site.get("/accounts/signup/").status_code == 503  # no patient sign-up yet
    assert site.get("/accounts/login/").status_code == 200
    admin = Client(HTTP_HOST="northgate.localhost")
    staff_force_login(admin, queued.email)
    page = admin.get("/settings/")
    assert page.status_code == 200 and 'data-testid="awaiting-approval"' in page.content.decode()


def test_approval_is_required_by_default() -> None:
    import os
    import subprocess
    import sys

    from tests.live import BASE_DIR

    env = {k: v for k, v in os.environ.items() if k != "INSTITUTIONS_NEED_APPROVAL"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.INSTITUTIONS_NEED_APPROVAL)",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "True", result.stderr


def test_it_tells_the_admin_what_to_do_next_once_live(queued: Onboarding, platform_client: Client) -> None:
    institution_go_live(onboarding_id=queued.pk)
    page = platform_client.get("/start/step/go-live/").content.decode()
    assert 'data-testid="next-steps"' in page and "What to do next" in page
    assert (
        "http://northgate.localhost:8000/accounts/login/?staff=1" in page or "accounts/login/?staff=1" in page
    )
    assert "set up the authenticator app" in page and "Settings → Website" in page
