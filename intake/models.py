"""A patient's case: who it is for, the question, and where it stands. In the institution's schema.

What was uploaded for a case (uploads, studies, reports) lives in ``imaging.models``.

Names of people, dates of birth and free text here are patient data: they never go into logs,
URLs or error pages. Storage keys are opaque (uuids), never file names.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Case(models.Model):
    """One request for a second opinion, from the first wizard step to the closed case."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Started")
        AWAITING_PAYMENT = "awaiting_payment", _("Awaiting payment")
        SUBMITTED = "submitted", _("Submitted")  # in the queue, unassigned
        ASSIGNED = "assigned", _("Assigned")
        IN_REVIEW = "in_review", _("In review")
        INFO_REQUESTED = "info_requested", _("More information requested")
        OPINION_DRAFTED = "opinion_drafted", _("Opinion drafted")
        RELEASED = "released", _("Opinion ready")
        CLOSED = "closed", _("Closed")
        DECLINED = "declined", _("Declined")
        WITHDRAWN = "withdrawn", _("Withdrawn by the patient")

    class Relation(models.TextChoices):
        SELF = "self", _("I am the patient")
        FAMILY = "family", _("Family member or carer")
        PHYSICIAN = "physician", _("Referring physician")
        OTHER = "other", _("Someone else acting for the patient")

    class Sex(models.TextChoices):
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")
        OTHER = "O", _("Other / prefer not to say")

    class Urgency(models.TextChoices):
        ROUTINE = "routine", _("Routine")
        SOON = "soon", _("Soon (a decision is due within weeks)")
        URGENT = "urgent", _("Urgent (a decision is due within days)")

    # Opaque public id: the only case identifier that appears in URLs.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Human case number shown to patients and staff, e.g. "NNI-000123" (set on submission).
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    wizard_step = models.CharField(max_length=20, default="patient")

    # Who is submitting, and for whom.
    submitter_relation = models.CharField(max_length=12, choices=Relation.choices, default=Relation.SELF)
    submitter_name = models.CharField(max_length=200, blank=True)

    # Step 1: the patient.
    patient_name = models.CharField(max_length=200, blank=True)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    patient_email = models.EmailField(blank=True)
    # When whoever reads patient_email confirmed it (intake.contact_email); case emails go
    # there only then, unless it is the account's own address.
    patient_email_confirmed_at = models.DateTimeField(null=True, blank=True)
    patient_phone = models.CharField(max_length=40, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)

    # Step 2: the question.
    question = models.TextField(blank=True)
    diagnosis_to_review = models.CharField(max_length=300, blank=True)
    history = models.TextField(blank=True)
    current_physician = models.CharField(max_length=200, blank=True)
    urgency = models.CharField(max_length=10, choices=Urgency.choices, default=Urgency.ROUTINE)
    specialty = models.CharField(max_length=100, blank=True)

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    status_changed = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    # The care team's latest words to the patient about the case (e.g. what more they need
    # when asking for more information); shown on the patient's status page.
    status_note = models.TextField(blank=True)
    # When the owner was told this untouched draft will be deleted (intake.drafts).
    purge_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.number or f"Draft {self.public_id}"


class CaseConsent(models.Model):
    """Which version of each of the institution's texts (consent, terms, privacy) the person
    filing the case accepted, and when. Append-only: accepting again after a text changed adds
    rows; the texts themselves are kept per version in ``branding.LegalTextVersion`` (public
    schema, so referred to by number and SHA-256, not by a foreign key)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=10)  # "consent", "terms", "privacy"
    # Which language's version was accepted (the filer's, or the institution's default language
    # when the text was not written in theirs); "en" for consents recorded before languages.
    language = models.CharField(max_length=8, default="en")
    version = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["accepted_at", "kind"]
