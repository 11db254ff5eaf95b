"""Demo staff for the review workspace: a TOTP authenticator with a fixed, printed secret (so a
person trying the demo can add it to an authenticator app) and roster entries for reviewers."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP

from accounts.models import User
from review.models import ReviewerProfile

# Base32; printed by seed_demo. Demo only: real staff activate their own at first sign-in.
DEMO_TOTP_SECRET = "SRDEMOSRDEMOSRDEMOSRDEMOSRDEMO22"  # noqa: S105

# Roster of the demo reviewers per institution slug: (email role, credentials, specialties, modalities).
DEMO_REVIEWERS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "neuro": (
        ("reviewer1", "MD, Neuroradiology", "neurology,neurosurgery", "CT,MR"),
        ("reviewer2", "MD, Neurosurgery", "neurosurgery,spine", "MR,CR,DX"),
    ),
    "cancer": (
        ("reviewer1", "MD, Oncologic imaging", "oncology,radiology", "CT,MR,PT"),
        ("reviewer2", "MD, Radiation oncology", "oncology", "CT,PT,NM"),
    ),
}


def demo_staff_mfa_ensure() -> int:
    """Give every staff account of the current schema without one the demo TOTP authenticator."""
    count = 0
    for user in User.objects.filter(is_active=True):
        if not user.is_institution_staff:
            continue
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, DEMO_TOTP_SECRET)
            count += 1
    return count


def demo_operator_mfa_ensure() -> int:
    """Give the public schema's operators without one the demo TOTP authenticator."""
    count = 0
    for user in User.objects.filter(is_active=True, is_operator=True):
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, DEMO_TOTP_SECRET)
            count += 1
    return count


def demo_roster_ensure(*, slug: str) -> None:
    for role, credentials, specialties, modalities in DEMO_REVIEWERS.get(slug, ()):
        user = User.objects.filter(email=f"{role}@{slug}.example.com").first()
        if user is not None:
            ReviewerProfile.objects.get_or_create(
                user=user,
                defaults={
                    "credentials": credentials,
                    "specialties": specialties,
                    "modalities": modalities,
                    "max_open_cases": 10,
                },
            )
