"""Create the demo platform: an operator and two institutions with staff and a patient.

Idempotent: running it again changes nothing that exists and prints the same logins.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context
from PIL import Image, ImageDraw, ImageFont

from accounts.models import User
from branding.services import brand_logo_set
from institutions.provisioning import tenant_template_ensure
from institutions.services import institution_create
from intake.demo import demo_case_ensure
from payments.demo import demo_payments_ensure
from review.demo import (
    DEMO_TOTP_SECRET,
    demo_roster_ensure,
    demo_staff_mfa_ensure,
)
from tenants.models import Institution
from tenants.services import platform_url, public_tenant_ensure

DEMO_PASSWORD = "secondread-demo"  # noqa: S105 (printed to the person running the demo)


@dataclass(frozen=True)
class DemoInstitution:
    slug: str
    name: str
    initials: str
    primary: str
    accent: str
    tagline: str
    welcome: str


DEMO_INSTITUTIONS = (
    DemoInstitution(
        slug="neuro",
        name="Northfield Neurological Institute",
        initials="NNI",
        primary="#4b2e83",
        accent="#0f7b6c",
        tagline="Brain, spine and nerve specialists",
        welcome="Our neurologists and neurosurgeons review brain and spine imaging from anywhere.",
    ),
    DemoInstitution(
        slug="cancer",
        name="Lakeside Cancer Center",
        initials="LCC",
        primary="#0b5e55",
        accent="#b54708",
        tagline="Cancer imaging second opinions",
        welcome="Our tumour board radiologists review your CT, MRI and PET imaging.",
    ),
)

DEMO_ROLES: tuple[tuple[str, str, dict[str, bool]], ...] = (
    ("admin", "Alex Admin", {"is_institution_admin": True}),
    ("coordinator", "Casey Coordinator", {"is_coordinator": True}),
    ("reviewer1", "Dr. Robin Reyes", {"is_reviewer": True}),
    ("reviewer2", "Dr. Sam Okafor", {"is_reviewer": True}),
    ("patient", "Pat Patient", {}),
)


def demo_email(role: str, slug: str) -> str:
    return f"{role}@{slug}.example.com"


def _logo_png(initials: str, primary: str, accent: str) -> bytes:
    image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((8, 8, 248, 248), radius=48, fill=primary)
    draw.ellipse((150, 150, 236, 236), fill=accent)
    font = ImageFont.load_default(size=88)
    draw.text((128, 118), initials, fill="white", font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _user_ensure(email: str, full_name: str, roles: dict[str, bool]) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(
            email, DEMO_PASSWORD, full_name=full_name, is_invited_staff=any(roles.values()), **roles
        )
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


class Command(BaseCommand):
    help = "Create the demo operator, institutions and users (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        public_tenant_ensure()
        # The migrated template schema new institutions are cloned from (go-live in seconds).
        tenant_template_ensure()
        with schema_context("public"):
            _user_ensure(
                "operator@secondread.example.com", "Olivia Operator", {"is_operator": True, "is_staff": True}
            )
            demo_staff_mfa_ensure()  # operators need a second factor too
        lines = [
            "",
            "SecondRead demo (password for every account: " + DEMO_PASSWORD + ")",
            f"  Platform & operator console: {platform_url()}  ·  operator@secondread.example.com",
            f"  Staff and operators sign in with a second factor: add the TOTP secret {DEMO_TOTP_SECRET}",
            "  to an authenticator app (the same secret for every demo staff account).",
        ]
        for demo in DEMO_INSTITUTIONS:
            institution = Institution.objects.filter(slug=demo.slug).first()
            if institution is None:
                institution = institution_create(
                    name=demo.name, slug=demo.slug, primary_colour=demo.primary, accent_colour=demo.accent
                )
                brand = institution.brand
                brand.tagline = demo.tagline
                brand.welcome_text = demo.welcome
                brand.support_email = f"secondopinion@{demo.slug}.example.com"
                brand.save()
                brand_logo_set(brand=brand, data=_logo_png(demo.initials, demo.primary, demo.accent))
            with schema_context(institution.schema_name):
                for role, full_name, flags in DEMO_ROLES:
                    _user_ensure(demo_email(role, demo.slug), full_name, flags)
                demo_staff_mfa_ensure()
                demo_roster_ensure(slug=demo.slug)
                # A submitted case with a real CT on a CD and its matching report (ingested here).
                demo_case_ensure(institution=institution)
                fee_lines = demo_payments_ensure(institution=institution)
            lines.append(f"  {demo.name}: {platform_url(slug=demo.slug)}")
            lines.append("    " + ", ".join(demo_email(role, demo.slug) for role, _, _ in DEMO_ROLES))
            lines.extend(fee_lines)
        self.stdout.write("\n".join(lines) + "\n")
