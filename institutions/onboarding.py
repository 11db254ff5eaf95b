"""The self-service onboarding wizard's writes: the applicant's account, the draft institution
(whose brand and settings are edited with the same forms the admin uses later), and the
request to go live (done in the background by institutions.provisioning).

Invariant: until go-live a draft institution has no schema and no Domain row, so nothing
routes to it; its logo is stored under its (reserved, opaque) schema name.
"""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from branding.emails import branded_email_send
from branding.models import Brand
from institutions.institution_settings import institution_fee_problem
from tenants.models import Institution, InstitutionSettings, Onboarding
from tenants.services import platform_url, public_tenant_ensure
from tenants.subdomains import subdomain_problem

# The wizard's steps, in order: (name, title). "account" is done once the email is verified.
STEPS: tuple[tuple[str, str], ...] = (
    ("account", "Your account"),
    ("subdomain", "Web address"),
    ("branding", "Look"),
    ("texts", "Texts"),
    ("fee", "Fee"),
    ("service", "Service"),
    ("team", "Team"),
    ("website", "Website"),
    ("go-live", "Go live"),
)
STEP_NAMES = tuple(name for name, _ in STEPS)

VERIFY_MAX_AGE = timedelta(days=3)
# Salts keep the module's old name: links already emailed must still verify.
_VERIFY_SALT = "tenants.onboarding.verify"

VERIFY_PASSWORD_WRONG = (
    "That is not the password chosen for this application. If you did not start it, sign up "  # noqa: S105
    "again with your own password: a new link will be sent."
)
VERIFY_LINK_INVALID = "This confirmation link is not valid or has expired. Sign up again to get a new one."
SIGN_IN_FAILED = "The email address or password is not right, or the email address is not confirmed yet."
SUBDOMAIN_FIRST = "Choose your web address first."
ALREADY_LIVE = "Your institution is already live; change its settings on its own site."
NOT_READY_TO_GO_LIVE = "Please complete these steps first: {steps}."


class OnboardingRefused(ValueError):
    pass


def onboarding_start(*, institution_name: str, full_name: str, email: str, password: str) -> None:
    """Create an unverified application and email the confirmation link.

    The answer is the same for every address ("check your email"), so the form tells nobody
    which addresses are operators' or already have an application: an operator's address gets
    an email saying it cannot be used, a verified application's owner an email saying how to
    continue it. An unverified application for the same address is replaced (the person may
    have lost the email, or someone else typed it: only the confirmed owner's password counts,
    see ``onboarding_verify``).
    """
    email = email.strip().lower()
    from accounts.models import User

    password_hash = make_password(password)  # same work whichever branch is taken
    if User.objects.filter(email=email, is_operator=True).exists():
        transaction.on_commit(lambda: _onboarding_notice_send(email=email, reason="operator"))
        return
    with transaction.atomic():
        existing = Onboarding.objects.select_for_update().filter(email=email).first()
        if existing is not None and existing.email_verified is not None:
            transaction.on_commit(lambda: _onboarding_notice_send(email=email, reason="started"))
            return
        onboarding = existing or Onboarding(email=email)
        onboarding.institution_name = institution_name.strip()
        onboarding.full_name = full_name.strip()
        onboarding.password_hash = password_hash
        onboarding.save()
        transaction.on_commit(lambda: onboarding_verification_send(onboarding=onboarding))


def _onboarding_notice_send(*, email: str, reason: str) -> None:
    branded_email_send(
        institution=public_tenant_ensure(),
        to=[email],
        subject="About your request to set up a second-opinion service",
        template="institutions/email/onboarding_notice",
        context={
            "reason": reason,
            "sign_in": platform_url().rstrip("/")
            + reverse("onboarding:sign_in", urlconf=settings.PUBLIC_SCHEMA_URLCONF),
        },
    )


def onboarding_verification_token(*, onboarding: Onboarding) -> str:
    return signing.dumps(str(onboarding.public_id), salt=_VERIFY_SALT)


def onboarding_verification_send(*, onboarding: Onboarding) -> None:
    # Explicit URLconf: this may run after the request (on commit), when the default is back.
    link = platform_url().rstrip("/") + reverse(
        "onboarding:verify",
        kwargs={"token": onboarding_verification_token(onboarding=onboarding)},
        urlconf=settings.PUBLIC_SCHEMA_URLCONF,
    )
    branded_email_send(
        institution=public_tenant_ensure(),
        to=[onboarding.email],
        subject="Confirm your email to set up your second-opinion service",
        template="institutions/email/onboarding_verify",
        context={"onboarding": onboarding, "link": link},
    )


def onboarding_for_verification(*, token: str) -> Onboarding:
    """The application a confirmation link names, or OnboardingRefused."""
    try:
        public_id = signing.loads(token, salt=_VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.BadSignature as exc:
        raise OnboardingRefused(VERIFY_LINK_INVALID) from exc
    onboarding = Onboarding.objects.filter(public_id=public_id).first()
    if onboarding is None:
        raise OnboardingRefused(VERIFY_LINK_INVALID)
    return onboarding


def onboarding_verify(*, onboarding: Onboarding, password: str | None) -> Onboarding:
    """Confirm the application's email.

    The link proves the address, not the password: someone may have started an application
    with another person's address (to share the institution-to-be later). So the password is
    proved too: either the browser that signed up follows the link (``password`` None, checked
    by the caller through the session), or the person types the password chosen at sign-up.
    """
    if password is not None and not check_password(password, onboarding.password_hash):
        raise OnboardingRefused(VERIFY_PASSWORD_WRONG)
    if onboarding.email_verified is None:
        onboarding.email_verified = timezone.now()
        onboarding.completed_steps = _with_step(onboarding.completed_steps, "account")
        onboarding.save(update_fields=["email_verified", "completed_steps", "updated"])
    return onboarding


def onboarding_authenticate(*, email: str, password: str) -> Onboarding | None:
    """The verified application for these credentials, or None."""
    onboarding = Onboarding.objects.filter(email=email.strip().lower(), email_verified__isnull=False).first()
    if onboarding is None:
        make_password(password)  # same work either way: no timing hint that the address exists
        return None
    return onboarding if check_password(password, onboarding.password_hash) else None


def _with_step(steps: list[str], step: str) -> list[str]:
    return [name for name in STEP_NAMES if name in steps or name == step]


def onboarding_step_complete(*, onboarding: Onboarding, step: str) -> Onboarding:
    onboarding.completed_steps = _with_step(onboarding.completed_steps, step)
    onboarding.save(update_fields=["completed_steps", "updated"])
    return onboarding


def _draft_schema_name() -> str:
    # Opaque and fixed for the institution's life: the subdomain may still change before
    # go-live, and files (the logo) are stored under the schema name.
    return f"inst_{secrets.token_hex(6)}"


def onboarding_subdomain_set(*, onboarding: Onboarding, slug: str) -> Institution:
    """Reserve ``slug`` for the applicant: the draft institution is created (with its brand and
    settings) the first time, renamed afterwards. Precondition: the email is verified."""
    if onboarding.state not in (Onboarding.State.DRAFT, Onboarding.State.FAILED):
        raise OnboardingRefused(ALREADY_LIVE)
    institution = onboarding.institution
    problem = subdomain_problem(slug=slug, institution=institution)
    if problem:
        raise OnboardingRefused(problem)
    try:
        with transaction.atomic():
            if institution is None:
                institution = Institution(
                    name=onboarding.institution_name,
                    slug=slug,
                    schema_name=_draft_schema_name(),
                    status=Institution.Status.DRAFT,
                )
                institution.save()
                Brand.objects.create(institution=institution)
                InstitutionSettings.objects.create(institution=institution)
                onboarding.institution = institution
            else:
                institution.slug = slug
                institution.name = onboarding.institution_name
                institution.save(update_fields=["slug", "name"])
            onboarding.completed_steps = _with_step(onboarding.completed_steps, "subdomain")
            onboarding.save(update_fields=["institution", "completed_steps", "updated"])
    except IntegrityError as exc:  # taken between the check and the insert
        from tenants.subdomains import SUBDOMAIN_TAKEN

        raise OnboardingRefused(SUBDOMAIN_TAKEN) from exc
    return institution


def onboarding_missing_steps(*, onboarding: Onboarding) -> list[str]:
    return [title for name, title in STEPS[:-1] if name not in onboarding.completed_steps]


def onboarding_go_live_request(*, onboarding_id: int) -> Onboarding:
    """Queue the go-live (claimed with a conditional UPDATE: a double click queues it once)."""
    from institutions.tasks import institution_go_live

    onboarding = Onboarding.objects.get(pk=onboarding_id)
    if onboarding.institution is None:
        raise OnboardingRefused(SUBDOMAIN_FIRST)
    missing = onboarding_missing_steps(onboarding=onboarding)
    if missing:
        raise OnboardingRefused(NOT_READY_TO_GO_LIVE.format(steps=", ".join(missing)))
    fee_problem = institution_fee_problem(institution=onboarding.institution)
    if fee_problem:
        raise OnboardingRefused(fee_problem)
    from institutions.recovery import GO_LIVE_STALE_AFTER

    # A go-live nobody works on any more (its worker died) may be tried again at once, as a
    # failed one may; the new run drops whatever the dead one made.
    stale = Q(
        state__in=(Onboarding.State.QUEUED, Onboarding.State.PROVISIONING),
        updated__lt=timezone.now() - GO_LIVE_STALE_AFTER,
    )
    with transaction.atomic():
        claimed = Onboarding.objects.filter(
            Q(state__in=(Onboarding.State.DRAFT, Onboarding.State.FAILED)) | stale, pk=onboarding_id
        ).update(
            state=Onboarding.State.QUEUED,
            progress=2,
            progress_message="Waiting for a free worker…",
            updated=timezone.now(),
        )
        if claimed:
            transaction.on_commit(lambda: institution_go_live.delay(onboarding_id))
    onboarding.refresh_from_db()
    return onboarding


def _files_delete(schema_name: str) -> None:
    from storage.tenant import tenant_storage

    tenant_storage(schema_name).delete_prefix("")


def _draft_schema_drop(schema_name: str) -> None:
    """A draft has no schema, unless a go-live died after making one: it goes with the draft."""
    from institutions.provisioning import schema_drop

    schema_drop(schema_name=schema_name)


def onboarding_discard_abandoned(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete applications never taken live (and their draft institution and logo)."""
    cutoff = timezone.now() - older_than
    count = 0
    stale = Onboarding.objects.filter(updated__lt=cutoff).exclude(state=Onboarding.State.LIVE)
    for onboarding in stale.select_related("institution"):
        institution = onboarding.institution
        with transaction.atomic():
            onboarding.delete()
            if institution is not None and institution.status == Institution.Status.DRAFT:
                institution.delete()
                transaction.on_commit(functools.partial(_draft_schema_drop, institution.schema_name))
                transaction.on_commit(functools.partial(_files_delete, institution.schema_name))
        count += 1
    return count
