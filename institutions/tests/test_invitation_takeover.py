"""An invitation gives roles only to credentials the invitee proved (account pre-hijacking).

The attack: someone signs up as a patient with a future staff member's address and never
confirms it; the staff member later accepts an invitation. Their password, not the attacker's,
must be the one that works, and the attacker's sessions and authenticators must be gone.
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import User
from audit.models import AuditEvent
from institutions.invitations import (
    INVITATION_SIGN_IN_FIRST,
    invitation_create,
    invitation_send,
    invitation_token,
)
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from tenants.models import Institution, Invitation

VICTIM = "future.reviewer@neuro.example.com"
ATTACKER_PASSWORD = "attacker-Passphrase-1"
INVITEE_PASSWORD = "invitee-Passphrase-2"


def _invite(neuro: Institution) -> str:
    invitation = invitation_create(institution=neuro, email=VICTIM, is_coordinator=False, is_reviewer=True)
    invitation_send(invitation=invitation)
    return f"/invitations/{invitation_token(invitation=invitation)}/"


def _attacker_signs_up(client: Client) -> None:
    client.post(
        "/accounts/signup/",
        {
            "email": VICTIM,
            "password1": ATTACKER_PASSWORD,
            "password2": ATTACKER_PASSWORD,
            "full_name": "Not The Reviewer",
            "submitter_relation": "self",
        },
    )


def _password_works(host: str, email: str, password: str) -> bool:
    client = Client(HTTP_HOST=host)
    client.post("/accounts/login/", {"login": email, "password": password})
    return "_auth_user_id" in client.session


def test_it_hands_an_unverified_account_to_the_invitee(neuro: Institution, neuro_client: Client) -> None:
    _attacker_signs_up(neuro_client)
    with schema_context(neuro.schema_name):
        squatted = User.objects.get(email=VICTIM)
        assert not EmailAddress.objects.get(user=squatted).verified
        Authenticator.objects.create(user=squatted, type=Authenticator.Type.TOTP, data={"secret": "X" * 32})
    attacker_session = Client(HTTP_HOST="neuro.localhost")
    with schema_context(neuro.schema_name):
        attacker_session.force_login(squatted)  # e.g. signed in while verification was optional
    path = _invite(neuro)

    invitee = Client(HTTP_HOST="neuro.localhost")
    assert "Create my account" in invitee.get(path).content.decode()
    response = invitee.post(
        path, {"full_name": "Dr Real Reviewer", "password1": INVITEE_PASSWORD, "password2": INVITEE_PASSWORD}
    )
    assert response.status_code == 302
    # The invitee is signed in (the account, with the password they chose), not the attacker.
    with schema_context(neuro.schema_name):
        assert invitee.session["_auth_user_id"] == str(squatted.pk)
    assert invitee.get("/workspace/")["Location"].startswith("/accounts/2fa/totp/activate/")

    assert not _password_works("neuro.localhost", VICTIM, ATTACKER_PASSWORD)
    assert _password_works("neuro.localhost", VICTIM, INVITEE_PASSWORD)
    with schema_context(neuro.schema_name):
        user = User.objects.get(email=VICTIM)
        assert user.pk == squatted.pk and user.is_reviewer and user.full_name == "Dr Real Reviewer"
        assert not Authenticator.objects.filter(user=user).exists()
        assert EmailAddress.objects.get(user=user).verified
        # The attacker's session is over.
        assert attacker_session.get("/accounts/email/").status_code == 302
        event = AuditEvent.objects.get(action="roles.change", object_ref=f"user:{user.pk}")
        assert event.detail["roles"] == ["Reviewer"]


def test_it_makes_a_verified_account_sign_in_before_accepting(neuro: Institution) -> None:
    with schema_context(neuro.schema_name):
        owner = User.objects.create_user(VICTIM, DEMO_PASSWORD, full_name="Real Person")
        EmailAddress.objects.create(user=owner, email=VICTIM, verified=True, primary=True)
    path = _invite(neuro)

    # Anyone holding the link but not the account's password: sent to sign in, nothing changes.
    stranger = Client(HTTP_HOST="neuro.localhost")
    response = stranger.post(
        path, {"full_name": "Someone", "password1": INVITEE_PASSWORD, "password2": INVITEE_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert INVITATION_SIGN_IN_FIRST in stranger.get(response["Location"]).content.decode()
    # Another signed-in account cannot accept it either.
    other = Client(HTTP_HOST="neuro.localhost")
    with schema_context(neuro.schema_name):
        other.force_login(User.objects.get(email="patient@neuro.example.com"))
    assert other.post(path, {}).status_code == 302
    with schema_context(neuro.schema_name):
        assert not User.objects.get(email=VICTIM).is_reviewer
        patient = User.objects.get(email="patient@neuro.example.com")
    assert other.session["_auth_user_id"] == str(patient.pk)  # still the patient, not signed in as the owner
    assert Invitation.objects.get(email=VICTIM).accepted is None
    assert not _password_works("neuro.localhost", VICTIM, INVITEE_PASSWORD)

    owner_client = Client(HTTP_HOST="neuro.localhost")
    owner_client.post("/accounts/login/", {"login": VICTIM, "password": DEMO_PASSWORD})
    assert "Accept the invitation" in owner_client.get(path).content.decode()
    assert owner_client.post(path, {}).status_code == 302
    with schema_context(neuro.schema_name):
        user = User.objects.get(email=VICTIM)
        assert user.is_reviewer and user.is_invited_staff
    assert _password_works("neuro.localhost", VICTIM, DEMO_PASSWORD)
