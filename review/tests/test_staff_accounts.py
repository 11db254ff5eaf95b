"""Admins deactivate staff who left and reset a lost authenticator (issue 15, item 9)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.models import CaseAssignment
from review.staff_accounts import SELF_DEACTIVATE_MESSAGE
from tenants.models import Institution
from tests.cases import user_in
from tests.staff import staff_force_login

ENDPOINTS = ("deactivate", "reactivate", "mfa-reset")


def test_it_deactivates_a_reviewer_ending_their_sessions_and_keeping_their_history(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    reviewer = user_in(neuro, "reviewer2@neuro.example.com")
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(case=case, reviewer=reviewer, assigned_at=case.created)
    their_session = staff_client("reviewer2")
    assert their_session.get("/workspace/").status_code == 200
    admin = staff_client("admin")

    response = admin.post(f"/workspace/roster/{reviewer.pk}/deactivate", follow=True)

    assert "is deactivated" in response.content.decode()
    assert 'data-testid="deactivated"' in admin.get("/workspace/roster/").content.decode()
    assert their_session.get("/workspace/").status_code == 302  # signed out, now
    with schema_context(neuro.schema_name):
        reviewer.refresh_from_db()
        assert not reviewer.is_active and reviewer.is_reviewer  # roles kept, as history
        assert CaseAssignment.objects.filter(case=case, reviewer=reviewer).exists()
        assert not [
            s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(reviewer.pk)
        ]
        assert AuditEvent.objects.filter(action="staff.deactivate", object_ref=f"user:{reviewer.pk}").exists()
    # Not offered for new cases.
    assign_page = admin.get(f"/workspace/cases/{make_case().public_id}/").content.decode()
    assert f'<option value="{reviewer.pk}"' not in assign_page
    # And back.
    admin.post(f"/workspace/roster/{reviewer.pk}/reactivate")
    with schema_context(neuro.schema_name):
        reviewer.refresh_from_db()
        assert reviewer.is_active


def test_it_refuses_to_let_an_admin_deactivate_themselves(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    admin_user = user_in(neuro, "admin@neuro.example.com")
    response = staff_client("admin").post(f"/workspace/roster/{admin_user.pk}/deactivate", follow=True)
    assert SELF_DEACTIVATE_MESSAGE in response.content.decode()
    with schema_context(neuro.schema_name):
        admin_user.refresh_from_db()
        assert admin_user.is_active


def test_it_resets_a_lost_authenticator_and_asks_for_a_new_one_at_the_next_sign_in(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    reviewer = user_in(neuro, "reviewer1@neuro.example.com")
    their_session = staff_client("reviewer1")
    with schema_context(neuro.schema_name):
        assert Authenticator.objects.filter(user=reviewer).exists()

    staff_client("admin").post(f"/workspace/roster/{reviewer.pk}/mfa-reset")

    with schema_context(neuro.schema_name):
        assert not Authenticator.objects.filter(user=reviewer).exists()
        event = AuditEvent.objects.get(action="staff.mfa_reset", object_ref=f"user:{reviewer.pk}")
        assert event.actor_email == "admin@neuro.example.com"
    assert their_session.get("/workspace/").status_code == 302
    # Signing in again: the password only (no code to give), then a new authenticator is asked for.
    again = Client(HTTP_HOST="neuro.localhost")
    again.post("/accounts/login/", {"login": "reviewer1@neuro.example.com", "password": DEMO_PASSWORD})
    response = again.get("/workspace/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/totp/activate")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_refuses_account_changes_to_anyone_but_the_admin(
    endpoint: str,
    neuro: Institution,
    neuro_client: Client,
    cancer_client: Client,
    staff_client: Callable[[str], Client],
) -> None:
    reviewer = user_in(neuro, "reviewer2@neuro.example.com")
    path = f"/workspace/roster/{reviewer.pk}/{endpoint}"
    assert neuro_client.post(path).status_code == 302  # signed out
    assert staff_client("coordinator").post(path).status_code == 403
    assert staff_client("reviewer1").post(path).status_code == 403
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    assert patient.post(path).status_code == 403
    staff_force_login(cancer_client, "admin@cancer.example.com")  # another institution's admin
    neuro_client.cookies = cancer_client.cookies
    assert neuro_client.post(path).status_code == 302
    # A patient is not on the roster: the admin cannot reach their account here.
    patient_user = user_in(neuro, "patient@neuro.example.com")
    assert staff_client("admin").post(f"/workspace/roster/{patient_user.pk}/{endpoint}").status_code == 404
    with schema_context(neuro.schema_name):
        reviewer.refresh_from_db()
        patient_user.refresh_from_db()
        assert reviewer.is_active and patient_user.is_active
        assert Authenticator.objects.filter(user=reviewer).exists()


def test_it_words_the_sign_in_page_for_staff_coming_to_the_workspace(neuro_client: Client) -> None:
    staff_page = neuro_client.get("/workspace/", follow=True).content.decode()
    assert "Staff sign-in" in staff_page and "staff workspace" in staff_page
    assert "Create an account to request a second opinion" not in staff_page
    patient_page = neuro_client.get("/accounts/login/").content.decode()
    assert "Sign in to follow your requests" in patient_page and "Staff sign-in" not in patient_page
