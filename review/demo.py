"""Demo staff for the review workspace: a TOTP authenticator with a fixed, printed secret (so a
person trying the demo can add it to an authenticator app) and roster entries for reviewers."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP

from accounts.models import User
from review.models import OpinionTemplate, ReviewerProfile

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
    """Give every staff or operator account of this schema without one the demo TOTP authenticator."""
    count = 0
    for user in User.objects.filter(is_active=True):
        if not (user.is_institution_staff or user.is_operator):
            continue
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, DEMO_TOTP_SECRET)
            count += 1
    return count


# One institution template per demo institution, so "Start from a template" has something to offer.
DEMO_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "neuro": (
        "MRI brain: mass lesion",
        "Lesion: location, size (mm), signal on T1/T2/FLAIR, enhancement, diffusion, mass effect, "
        "midline shift.\n\nOther findings: ventricles, extra-axial spaces, vessels.",
        "Most consistent with …\n\nDifferential diagnosis: …",
    ),
    "cancer": (
        "CT staging",
        "Primary tumour: site, size (mm), local extent.\n\nNodes: …\n\nDistant disease: …",
        "Stage (TNM): …",
    ),
}


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
    demo_templates_ensure(slug=slug)


def demo_templates_ensure(*, slug: str) -> None:
    if slug not in DEMO_TEMPLATES or OpinionTemplate.objects.filter(owner__isnull=True).exists():
        return
    admin = User.objects.filter(email=f"admin@{slug}.example.com").first()
    if admin is None:
        return
    name, findings, impression = DEMO_TEMPLATES[slug]
    OpinionTemplate.objects.create(name=name, findings=findings, impression=impression, created_by=admin)
