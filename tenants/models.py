"""Institutions (tenants), their domains, and everything the platform keeps about them: service
settings, onboarding drafts, staff invitations, custom domains, usage and operator actions.

All of it lives in the public schema and none of it is patient data.
"""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from tenants.timezones import DEFAULT_TIME_ZONE, time_zone_validate


class Institution(TenantMixin):
    """A hospital, institute or imaging centre; one PostgreSQL schema holds all its data.

    An institution being onboarded is a ``draft``: the row (with its brand and settings) exists
    so the wizard's steps are saved, but it has no schema and no Domain row, so nothing routes
    to it until it goes live.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Onboarding"
        PENDING = "pending", "Pending approval"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=40, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(auto_now_add=True)
    status_changed = models.DateTimeField(null=True, blank=True)
    went_live = models.DateTimeField(null=True, blank=True)
    # Where its people are (an IANA name): dates shown, emailed and printed, due dates and
    # business days are counted in it; stored datetimes stay UTC (tenants.timezones).
    time_zone = models.CharField(
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        db_default=DEFAULT_TIME_ZONE,
        validators=[time_zone_validate],
    )

    # Schemas are created explicitly (institutions.services.institution_create, or at go-live from
    # a template by institutions.provisioning), never as a side effect of save(): a draft's row is
    # saved many times before it has a schema.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"


class Domain(DomainMixin):
    """A host name routed to an institution (``<slug>.<platform domain>`` or its own)."""

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


FEE_CURRENCIES = (
    ("usd", "US dollar (USD)"),
    ("eur", "Euro (EUR)"),
    ("gbp", "Pound sterling (GBP)"),
    ("chf", "Swiss franc (CHF)"),
    ("cad", "Canadian dollar (CAD)"),
    ("aud", "Australian dollar (AUD)"),
    ("sek", "Swedish krona (SEK)"),
    ("nok", "Norwegian krone (NOK)"),
    ("dkk", "Danish krone (DKK)"),
)


class InstitutionSettings(models.Model):
    """How an institution runs its service: fee, turnaround promise, specialties.

    ``fee_*`` are read by the payments app (Stripe): the amount is in major units with two
    decimals; every currency offered has two decimals, so ``fee_amount_minor`` is what Stripe
    expects; currency codes are lower-case ISO 4217 as Stripe writes them.
    """

    institution = models.OneToOneField(Institution, on_delete=models.CASCADE, related_name="service_settings")
    fee_enabled = models.BooleanField(default=False)
    fee_amount = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100000"))],
    )
    fee_currency = models.CharField(max_length=3, choices=FEE_CURRENCIES, default="usd")
    # The fee is paid with waiver codes the institution hands out, never by card: the
    # institution's explicit choice, so it can take patients without a payment account.
    fee_waivers_only = models.BooleanField(default=False)
    turnaround_business_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    # One specialty per line, e.g. "Neuroradiology"; shown to patients, matched to reviewers.
    specialties = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Settings of {self.institution}"

    @property
    def fee_amount_minor(self) -> int:
        return int(self.fee_amount * 100)

    @property
    def specialty_list(self) -> list[str]:
        return [line.strip() for line in self.specialties.splitlines() if line.strip()]


class Onboarding(models.Model):
    """A new institution's first administrator going through the sign-up wizard.

    Applicants are not user accounts of the public schema (those are operators only): the
    email and password hash live here until go-live, when the administrator's account is
    created in the institution's own schema with the same password.
    """

    class State(models.TextChoices):
        DRAFT = "draft", "In progress"
        QUEUED = "queued", "Going live"
        PROVISIONING = "provisioning", "Going live"
        LIVE = "live", "Live"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200)
    institution_name = models.CharField(max_length=200)
    password_hash = models.CharField(max_length=256)
    email_verified = models.DateTimeField(null=True, blank=True)
    institution = models.OneToOneField(
        Institution, on_delete=models.SET_NULL, null=True, blank=True, related_name="onboarding"
    )
    # The wizard steps completed so far (names from institutions.onboarding.STEPS).
    completed_steps = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    progress = models.PositiveSmallIntegerField(default=0)  # percent, shown while going live
    # Go-live runs that claimed it; the recovery sweep (institutions.recovery) gives up, rolling
    # back, after a few runs that never finished (their worker died each time).
    go_live_attempts = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Onboarding of {self.institution_name}"


def _invitation_token() -> str:
    return secrets.token_urlsafe(24)


class Invitation(models.Model):
    """A coordinator or reviewer invited by an institution's admin.

    Accepted on the institution's own domain (the account is created in its schema). The link
    carries a signed value naming ``public_id``; it is single-use (``accepted`` is claimed with
    a conditional UPDATE) and expires (signature age and ``expires``).
    """

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="invitations")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField()
    is_coordinator = models.BooleanField(default=False)
    is_reviewer = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    sent = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField(null=True, blank=True)
    accepted = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "email"],
                condition=models.Q(accepted__isnull=True, revoked__isnull=True),
                name="one_open_invitation_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation to {self.email}"

    @property
    def role_names(self) -> list[str]:
        return [
            name
            for flag, name in ((self.is_coordinator, "Coordinator"), (self.is_reviewer, "Reviewer"))
            if flag
        ]


def _verification_token() -> str:
    return secrets.token_hex(16)


class CustomDomain(models.Model):
    """A host name an institution wants to use (e.g. ``secondopinion.hospital.org``).

    Routed (a ``Domain`` row) only after DNS shows the CNAME to the platform and the TXT
    record ``_secondread-verify.<domain>`` holding ``token``.
    """

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="custom_domains")
    domain = models.CharField(max_length=253)
    token = models.CharField(max_length=64, default=_verification_token)
    created = models.DateTimeField(auto_now_add=True)
    verified = models.DateTimeField(null=True, blank=True)
    last_checked = models.DateTimeField(null=True, blank=True)
    last_problem = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "domain"], name="one_claim_per_institution"),
            models.UniqueConstraint(
                fields=["domain"], condition=models.Q(verified__isnull=False), name="one_verified_owner"
            ),
        ]

    def __str__(self) -> str:
        return self.domain


class InstitutionUsage(models.Model):
    """Counts for the operator console, refreshed by a periodic task (no patient data)."""

    institution = models.OneToOneField(Institution, on_delete=models.CASCADE, related_name="usage")
    case_count = models.PositiveIntegerField(default=0)
    storage_bytes = models.BigIntegerField(default=0)
    last_activity = models.DateTimeField(null=True, blank=True)
    measured = models.DateTimeField()

    def __str__(self) -> str:
        return f"Usage of {self.institution}"


class OperatorAction(models.Model):
    """Every status change an operator makes, with the reason.

    Append-only: a database trigger refuses UPDATE and DELETE (migrations 0003, 0009). The one
    change it lets through: when an institution is deleted (after its export), its actions stay,
    detached from it (``institution`` NULL), and still name it by ``institution_slug``.
    """

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved"
        SUSPEND = "suspend", "Suspended"
        REACTIVATE = "reactivate", "Reactivated"

    institution = models.ForeignKey(
        Institution, on_delete=models.SET_NULL, null=True, related_name="operator_actions"
    )
    institution_slug = models.SlugField(max_length=63)
    operator_email = models.EmailField()
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField()
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.institution_slug}"


class InstitutionRemoval(models.Model):
    """An institution deleted after its export (``delete_institution``): which, by whom, why,
    and which archive holds it. Outlives the institution (no foreign key) and is append-only
    (a database trigger refuses UPDATE, DELETE and TRUNCATE, migration 0009)."""

    slug = models.SlugField(max_length=63)
    name = models.CharField(max_length=200)
    schema_name = models.CharField(max_length=63)
    removed_by = models.CharField(max_length=254)
    reason = models.TextField()
    # sha256 of the export archive the deletion was checked against, and how many files it held.
    archive_sha256 = models.CharField(max_length=64)
    archive_files = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.slug} removed {self.created:%Y-%m-%d}"


class SchemaMigrationState(models.Model):
    """Where each tenant schema stands with its migrations, written by the migration executor
    (tenants.schema_migrations) as it works: which schemas are current, which one is being
    migrated, which failed and why. A failed or interrupted deploy is resumed by running
    ``migrate`` again; ``./sr manage migration_report`` prints it. Not patient data."""

    class Status(models.TextChoices):
        CURRENT = "current", "Current"
        RUNNING = "running", "Migrating"
        FAILED = "failed", "Failed"

    schema_name = models.CharField(max_length=63, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    # sha256 of the migrations applied when last checked or migrated (tenants.schema_migrations).
    fingerprint = models.CharField(max_length=64, blank=True)
    # The newest applied migration of each app, e.g. {"intake": "0012_case_sla"}: the report.
    versions = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["schema_name"]

    def __str__(self) -> str:
        return f"Migrations of {self.schema_name}"
