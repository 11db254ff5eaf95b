"""Review workspace records, all in the institution's schema: its review settings, the roster,
assignments, internal notes, opinions, follow-up questions, outcomes and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ReviewSettings(models.Model):
    """The institution's review rules: one row per schema, written at go-live and by the roster page
    (until then ``review_settings_get`` answers the defaults).

    Kept here until the onboarding settings hold these values; the queue, the session timeout and
    the patient's follow-up thread read them only through ``review.selectors``.
    """

    # The turnaround promise is not here: it has one home, the institution's service settings
    # (tenants.InstitutionSettings; review.selectors.turnaround_business_days_get reads it).
    # A case due within this many business days is shown as "due soon".
    soon_due_business_days = models.PositiveSmallIntegerField(default=2)
    session_idle_minutes = models.PositiveSmallIntegerField(default=15)
    reviewers_see_only_assigned = models.BooleanField(default=True)
    follow_up_questions_allowed = models.PositiveSmallIntegerField(default=3)
    # Percent of signed opinions sent to a second reviewer before release (0: only on request).
    peer_review_percent = models.PositiveSmallIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)


class ReviewerProfile(models.Model):
    """A reviewer on the roster: what they read, whether they take cases, how many at once."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviewer_profile"
    )
    # Shown on the signed opinion under the reviewer's name, e.g. "MD, Neuroradiology".
    credentials = models.CharField(max_length=200, blank=True)
    # Their role, printed on the signed opinion beside the credentials, e.g. "Consultant
    # neuroradiologist" (a local doctor reading the opinion needs to know who wrote it).
    title = models.CharField(max_length=200, blank=True)
    # Comma-separated, lower case: "neurology,neurosurgery" / "CT,MR" (upper case modalities).
    specialties = models.CharField(max_length=300, blank=True)
    modalities = models.CharField(max_length=100, blank=True)
    available = models.BooleanField(default=True)
    max_open_cases = models.PositiveSmallIntegerField(default=10)
    # Round robin among equally loaded reviewers: the one assigned longest ago goes first.
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    def specialty_list(self) -> list[str]:
        return [s.strip().lower() for s in self.specialties.split(",") if s.strip()]

    def modality_list(self) -> list[str]:
        return [m.strip().upper() for m in self.modalities.split(",") if m.strip()]


class CaseAssignment(models.Model):
    """Which reviewer reads a case (one at a time; reassigning replaces the row's reviewer)."""

    case = models.OneToOneField("intake.Case", on_delete=models.CASCADE, related_name="assignment")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_assignments"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_rules = models.BooleanField(default=False)
    assigned_at = models.DateTimeField()


class CaseNote(models.Model):
    """An internal note by staff; never shown to the patient."""

    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="review_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]


class Opinion(models.Model):
    """The written second opinion. A draft until signed; after signing nothing in it changes
    (``opinion_draft_save`` refuses, and the signed text's SHA-256 is kept to prove it)."""

    class Agreement(models.TextChoices):
        AGREE = "agree", _("Agree with the original diagnosis")
        PARTLY = "partly", _("Partly agree")
        DISAGREE = "disagree", _("Disagree")

    class Recommendation(models.TextChoices):
        SURGERY = "surgery", _("Surgery")
        FURTHER_IMAGING = "further_imaging", _("Further imaging")
        TREATMENT_CHANGE = "treatment_change", _("Change of treatment")
        NO_CHANGE = "no_change", _("No change")
        OTHER = "other", _("Other")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.OneToOneField("intake.Case", on_delete=models.CASCADE, related_name="opinion")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    question_restated = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    agreement = models.CharField(max_length=10, choices=Agreement.choices, blank=True)
    recommendation = models.CharField(max_length=20, choices=Recommendation.choices, blank=True)
    comments = models.TextField(blank=True)
    # Plain-language words for the patient, shown to them first (page and PDF).
    patient_summary = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Frozen at signing, so the PDF and the page show who signed with which credentials.
    signer_name = models.CharField(max_length=200, blank=True)
    signer_credentials = models.CharField(max_length=200, blank=True)
    signer_title = models.CharField(max_length=200, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    pdf_key = models.CharField(max_length=300, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None


class FollowUpQuestion(models.Model):
    """A patient's question about a released opinion, and the institution's answer."""

    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="follow_ups")
    asked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    question = models.TextField()
    asked_at = models.DateTimeField(auto_now_add=True)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    # When the patient was emailed about the current answer: claimed before sending, so a task
    # delivered twice sends one email.
    answer_emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asked_at", "id"]


class Outcome(models.Model):
    """What happened to the patient after the opinion, recorded by a coordinator."""

    class Kind(models.TextChoices):
        SURGERY_SCHEDULED = "surgery_scheduled", "Surgery scheduled"
        TREATMENT_CHANGED = "treatment_changed", "Treatment changed"
        NO_CHANGE = "no_change", "No change"
        TRAVELLED = "travelled", "Patient travelled for care"

    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="outcomes")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recorded_at", "id"]


class OpinionShare(models.Model):
    """A link the patient gives their own doctor to read the released opinion: time-limited,
    revocable, and opened only with a code passed on separately (shown once to the patient).

    Neither the link's token nor the code is stored: only their SHA-256, so a database backup
    opens nothing. Wrong codes are counted per link; too many lock it for a while, and every
    access (right or wrong) is in the audit log.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="opinion_shares")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Who it is for, in the patient's words ("Dr. Local"); shown to the patient only.
    recipient = models.CharField(max_length=200, blank=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    code_sha256 = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]


class StaffNotification(models.Model):
    """One line of a staff member's in-app list (and, unless they turned it off, an email).

    ``key`` makes each notice happen once: a repeated step or a daily task run twice finds the
    row there and writes nothing (e.g. "due:<case>:<date>" once per case per day)."""

    class Kind(models.TextChoices):
        NEW_CASE = "new_case", "New case submitted"
        ASSIGNED = "assigned", "Case assigned to you"
        FOLLOW_UP = "follow_up", "Patient asked a follow-up question"
        INFO_RECEIVED = "info_received", "Patient sent the information asked for"
        DUE_TOMORROW = "due_tomorrow", "Case due tomorrow"
        OVERDUE = "overdue", "Case overdue"
        PEER_REVIEW = "peer_review", "Peer review asked of you"
        PEER_DISAGREED = "peer_disagreed", "Peer reviewer disagrees"
        PEER_UNASSIGNED = "peer_unassigned", "Peer review needs a reviewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]


class NotificationPreference(models.Model):
    """Which notices a staff member does not want by email (the in-app list shows them all)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    # Kinds of StaffNotification not emailed, e.g. ["due_tomorrow"].
    email_off = models.JSONField(default=list, blank=True)


class OpinionTemplate(models.Model):
    """A starting text for the structured opinion, chosen when a reviewer starts one.

    ``owner`` empty: the institution's template, shared by its reviewers and written only by its
    administrators. ``owner`` set: that reviewer's personal template, seen by no one else."""

    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="opinion_templates",
    )
    patient_summary = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    recommendation = models.CharField(max_length=20, choices=Opinion.Recommendation.choices, blank=True)
    comments = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    @property
    def is_personal(self) -> bool:
        return self.owner_id is not None


class OpinionAddendum(models.Model):
    """Words added to a signed opinion, which itself never changes: written and signed in one
    step (the reviewer proves who they are again), frozen from then on.

    Each addendum has its own PDF: the opinion with every addendum up to this one. The opinion's
    own ``pdf_key`` stays the original, signed version."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    opinion = models.ForeignKey(Opinion, on_delete=models.CASCADE, related_name="addenda")
    text = models.TextField()
    signed_at = models.DateTimeField()
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField(max_length=200)
    signer_credentials = models.CharField(max_length=200, blank=True)
    signer_title = models.CharField(max_length=200, blank=True)
    content_sha256 = models.CharField(max_length=64)
    pdf_key = models.CharField(max_length=300)

    class Meta:
        ordering = ["signed_at", "id"]


class FhirEndpoint(models.Model):
    """The institution's FHIR R4 server, where each released opinion is pushed (review.fhir_push).
    At most one (pk 1), set by admins at /settings/fhir/. The bearer token or the OAuth client
    secret is kept encrypted like second-factor secrets (accounts.mfa_adapter) and never shown."""

    class Auth(models.TextChoices):
        NONE = "none", "None (a private network)"
        BEARER = "bearer", "Bearer token"
        CLIENT_CREDENTIALS = "client_credentials", "OAuth 2.0 client credentials"

    base_url = models.URLField(max_length=500)
    auth = models.CharField(max_length=20, choices=Auth.choices, default=Auth.NONE)
    # Client credentials: where the token comes from, who we are, what we ask for.
    token_url = models.URLField(max_length=500, blank=True)
    client_id = models.CharField(max_length=200, blank=True)
    scope = models.CharField(max_length=500, blank=True)
    # The bearer token, or the client secret.
    secret_encrypted = models.TextField(blank=True)
    # Off: released opinions are not pushed (the settings stay).
    enabled = models.BooleanField(default=True)
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )


class PeerReview(models.Model):
    """A second reviewer's check of a signed opinion before it is released, asked for by staff
    or sampled at the institution's rate when the opinion is signed.

    While one is waiting, or its reviewer disagrees, the opinion cannot be released: the peer
    may change their answer (resolved), or an administrator overrides it with a reason."""

    class Verdict(models.TextChoices):
        PENDING = "pending", "Waiting for the peer reviewer"
        AGREE = "agree", "Agrees"
        DISAGREE = "disagree", "Disagrees"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="peer_reviews")
    # Empty while a sampled review waits for a coordinator to choose the peer (no one was free).
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sampled = models.BooleanField(default=False)
    requested_at = models.DateTimeField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices, default=Verdict.PENDING)
    comment = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["requested_at", "id"]
        constraints = [
            # One open request per case: asking again names a different peer on the same row.
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(verdict="pending", overridden_at__isnull=True),
                name="review_one_open_peer_review_per_case",
            )
        ]

    @property
    def blocks_release(self) -> bool:
        return self.overridden_at is None and self.verdict != self.Verdict.AGREE
