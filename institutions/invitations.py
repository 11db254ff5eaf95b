"""Inviting coordinators and reviewers, and accepting an invitation on the institution's own
domain (which creates the account in the institution's schema).

Tokens are signed (``django.core.signing``, salted), expire (signature age and ``expires``)
and are single-use (``accepted`` claimed with a conditional UPDATE).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from accounts.signals import roles_changed
from branding.emails import branded_email_send
from tenants.models import Institution, Invitation
from tenants.selectors import institution_primary_url

logger = logging.getLogger(__name__)

INVITATION_LIFETIME = timedelta(days=7)
# The salt keeps the module's old name: invitations already emailed must still open.
_SALT = "tenants.invitations"

INVITATION_NEEDS_ROLE = "Choose at least one role: coordinator or reviewer."
INVITATION_DUPLICATE = "This person already has an open invitation."
INVITATION_ALREADY_STAFF = "This person is already on your team."
INVITATION_INVALID = "This invitation link is not valid. Ask your administrator for a new one."
INVITATION_EXPIRED = "This invitation has expired. Ask your administrator for a new one."
INVITATION_USED = "This invitation has already been used. Sign in with your account."
INVITATION_ACCEPTED = "Welcome to the team. Your account is ready and you are signed in."
INVITATION_ROLES_ADDED = "Your existing account now has the invited roles."
INVITATION_SIGN_IN_FIRST = (
    "An account with this email address already exists: sign in to it first, then open the "
    "invitation link again to accept."
)


class InvitationRefused(ValueError):
    pass


@dataclass(frozen=True)
class InvitationAccepted:
    """The account that now has the invited roles, and the message to show. ``password_chosen``:
    the invitee set the account's password on the invitation's page (a new account, or one taken
    over), so the page may sign them in with it."""

    user: User
    message: str
    password_chosen: bool


def invitation_create(
    *, institution: Institution, email: str, is_coordinator: bool, is_reviewer: bool
) -> Invitation:
    """An invitation; sent now if the institution is live, else at go-live."""
    email = email.strip().lower()
    if not (is_coordinator or is_reviewer):
        raise InvitationRefused(INVITATION_NEEDS_ROLE)
    if institution.status != Institution.Status.DRAFT:
        with schema_context(institution.schema_name):
            if (
                User.objects.filter(email=email)
                .filter(is_coordinator__gte=is_coordinator, is_reviewer__gte=is_reviewer)
                .exists()
            ):
                raise InvitationRefused(INVITATION_ALREADY_STAFF)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                institution=institution, email=email, is_coordinator=is_coordinator, is_reviewer=is_reviewer
            )
    except IntegrityError as exc:
        raise InvitationRefused(INVITATION_DUPLICATE) from exc
    if institution.status != Institution.Status.DRAFT:
        transaction.on_commit(lambda: invitation_send(invitation=invitation))
    return invitation


def invitation_revoke(*, institution: Institution, invitation_id: int) -> None:
    Invitation.objects.filter(institution=institution, pk=invitation_id, accepted__isnull=True).update(
        revoked=timezone.now()
    )


def invitation_token(*, invitation: Invitation) -> str:
    return signing.dumps(str(invitation.public_id), salt=_SALT)


def invitation_send(*, invitation: Invitation) -> Invitation:
    """Email the invitation link (on the institution's own domain) and start its validity."""
    institution = invitation.institution
    now = timezone.now()
    invitation.sent = now
    invitation.expires = now + INVITATION_LIFETIME
    invitation.save(update_fields=["sent", "expires"])
    link = institution_primary_url(institution=institution).rstrip("/") + reverse(
        "invitation_accept",
        kwargs={"token": invitation_token(invitation=invitation)},
        urlconf=settings.ROOT_URLCONF,
    )
    branded_email_send(
        institution=institution,
        to=[invitation.email],
        subject=f"You are invited to {institution.name}'s second-opinion service",
        template="institutions/email/invitation",
        context={
            "invitation": invitation,
            "link": link,
            "roles": " and ".join(invitation.role_names).lower(),
        },
    )
    return invitation


def institution_invitations_send_pending(*, institution: Institution) -> int:
    """Send every invitation drafted during onboarding (called once the institution is live)."""
    sent = 0
    pending = Invitation.objects.filter(
        institution=institution, sent__isnull=True, accepted__isnull=True, revoked__isnull=True
    )
    for invitation in pending.select_related("institution"):
        try:
            invitation_send(invitation=invitation)
            sent += 1
        except Exception:  # one bad address must not stop the others; re-sendable later
            logger.exception("invitation email failed", extra={"invitation": invitation.pk})
    return sent


def invitation_for_token(*, institution: Institution, token: str) -> Invitation:
    """The open invitation of ``institution`` the token names, or InvitationRefused."""
    try:
        public_id = signing.loads(token, salt=_SALT, max_age=INVITATION_LIFETIME)
    except signing.SignatureExpired as exc:
        raise InvitationRefused(INVITATION_EXPIRED) from exc
    except signing.BadSignature as exc:
        raise InvitationRefused(INVITATION_INVALID) from exc
    invitation = Invitation.objects.filter(
        public_id=public_id, institution=institution, revoked__isnull=True
    ).first()
    if invitation is None or invitation.sent is None:
        raise InvitationRefused(INVITATION_INVALID)
    if invitation.accepted is not None:
        raise InvitationRefused(INVITATION_USED)
    if invitation.expires is None or invitation.expires < timezone.now():
        raise InvitationRefused(INVITATION_EXPIRED)
    return invitation


def invitation_needs_sign_in(*, invitation: Invitation) -> bool:
    """Whether a verified account already holds the invited address: only that account,
    signed in, may accept (the invitee must prove the account's credentials, not only the
    email). Precondition: the connection is on the invitation's institution's schema."""
    return EmailAddress.objects.filter(email__iexact=invitation.email, verified=True).exists()


def invitation_accept(
    *,
    institution: Institution,
    token: str,
    full_name: str = "",
    password: str = "",
    signed_in: User | None = None,
) -> InvitationAccepted:
    """Give the invited roles to the account of the invited address, in the institution's schema.

    The link proves the invitee controls the address, and nothing more, so roles only ever go to
    credentials the invitee proved:

    - no account holds the address: one is created with the invitee's name and password;
    - a *verified* account holds it: only that account, signed in (``signed_in``), may accept;
      anyone else gets ``INVITATION_SIGN_IN_FIRST`` and nothing changes;
    - an *unverified* account holds it (someone signed up with the address and never proved
      it: possibly an attacker pre-creating the staff member's account): the invitee takes it
      over. Its password becomes the invitee's, its authenticators and other addresses are
      removed, and every session of the old credentials ends (Django ends sessions whose
      password hash no longer matches; they are also deleted here).

    Precondition: the connection is on ``institution``'s schema (a request on its domain).
    """
    from allauth.mfa.models import Authenticator

    invitation = invitation_for_token(institution=institution, token=token)
    with transaction.atomic():
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted__isnull=True, revoked__isnull=True, expires__gte=timezone.now()
        ).update(accepted=timezone.now())
        if not claimed:
            raise InvitationRefused(INVITATION_USED)
        user = User.objects.select_for_update().filter(email=invitation.email).first()
        verified = (
            user is not None
            and EmailAddress.objects.filter(user=user, email__iexact=invitation.email, verified=True).exists()
        )
        if user is not None and verified:
            if signed_in is None or signed_in.pk != user.pk:
                raise InvitationRefused(INVITATION_SIGN_IN_FIRST)  # rolls the claim back
            message = INVITATION_ROLES_ADDED
            password_chosen = False
        elif user is not None:
            if not password:
                raise InvitationRefused(INVITATION_INVALID)
            user.set_password(password)
            user.full_name = full_name.strip()
            user.is_active = True
            user.save(update_fields=["password", "full_name", "is_active"])
            Authenticator.objects.filter(user=user).delete()
            EmailAddress.objects.filter(user=user).exclude(email__iexact=invitation.email).delete()
            _sessions_end(user=user)
            message = INVITATION_ACCEPTED
            password_chosen = True
        else:
            user = User.objects.create_user(invitation.email, password, full_name=full_name.strip())
            message = INVITATION_ACCEPTED
            password_chosen = True
        user.is_coordinator = user.is_coordinator or invitation.is_coordinator
        user.is_reviewer = user.is_reviewer or invitation.is_reviewer
        user.is_invited_staff = True
        user.save(update_fields=["is_coordinator", "is_reviewer", "is_invited_staff"])
        # The link reached this address, so the address is confirmed.
        EmailAddress.objects.update_or_create(
            user=user, email=invitation.email, defaults={"verified": True, "primary": True}
        )
        roles_changed.send(
            sender=User, user=user, by=signed_in, roles=user.role_names, reason=f"invitation:{invitation.pk}"
        )
    return InvitationAccepted(user=user, message=message, password_chosen=password_chosen)


def _sessions_end(*, user: User) -> None:
    """Delete every session of ``user`` in the current schema (sessions are per schema)."""
    from django.contrib.sessions.models import Session

    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
