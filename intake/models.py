"""A patient's case and everything uploaded for it. All in the institution's schema.

Names of people, dates of birth and free text here are patient data: they never go into logs,
URLs or error pages. Storage keys are opaque (uuids), never file names.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Case(models.Model):
    """One request for a second opinion, from the first wizard step to the closed case."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Started"
        AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment"
        SUBMITTED = "submitted", "Submitted"  # in the queue, unassigned
        ASSIGNED = "assigned", "Assigned"
        IN_REVIEW = "in_review", "In review"
        INFO_REQUESTED = "info_requested", "More information requested"
        OPINION_DRAFTED = "opinion_drafted", "Opinion drafted"
        RELEASED = "released", "Opinion ready"
        CLOSED = "closed", "Closed"
        DECLINED = "declined", "Declined"

    class Relation(models.TextChoices):
        SELF = "self", "I am the patient"
        FAMILY = "family", "Family member or carer"
        PHYSICIAN = "physician", "Referring physician"
        OTHER = "other", "Someone else acting for the patient"

    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "O", "Other / prefer not to say"

    class Urgency(models.TextChoices):
        ROUTINE = "routine", "Routine"
        SOON = "soon", "Soon (a decision is due within weeks)"
        URGENT = "urgent", "Urgent (a decision is due within days)"

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

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.number or f"Draft {self.public_id}"


class Upload(models.Model):
    """One file (or zip) sent by a patient, resumable (tus). Its bytes go to storage."""

    class Status(models.TextChoices):
        RECEIVING = "receiving", "Receiving"
        RECEIVED = "received", "Received"
        INGESTING = "ingesting", "Processing"
        DONE = "done", "Processed"
        FAILED = "failed", "Could not be processed"
        EXPIRED = "expired", "Expired"

    class Kind(models.TextChoices):
        IMAGING = "imaging", "Imaging"
        REPORT = "report", "Report"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="uploads")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.IMAGING)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVING, db_index=True)
    # The path inside the folder the patient picked (e.g. "DICOM/IM000001"); patient data.
    relative_path = models.CharField(max_length=1000, blank=True)
    length = models.BigIntegerField(null=True, blank=True)
    offset = models.BigIntegerField(default=0)
    storage_key = models.CharField(max_length=300)
    multipart_id = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # tus receiving state (intake.tus): the multipart parts flushed so far as [number, etag],
    # and the staged object holding the bytes past the last full part (< 5 MiB, S3's minimum).
    # offset == sum of part sizes + size of the tail.
    parts = models.JSONField(default=list, blank=True)
    tail_key = models.CharField(max_length=300, blank=True)
    # Why the upload failed or was refused, in words the patient understands.
    error_message = models.CharField(max_length=300, blank=True)


class Study(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=200, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    modalities = models.CharField(max_length=64, blank=True)  # e.g. "CT,MR"
    body_part = models.CharField(max_length=64, blank=True)
    referring_physician = models.CharField(max_length=200, blank=True)
    # As written in the files; compared across the upload by the consistency checks.
    patient_name_in_files = models.CharField(max_length=200, blank=True)
    patient_id_in_files = models.CharField(max_length=64, blank=True)
    patient_birth_date_in_files = models.CharField(max_length=16, blank=True)
    patient_sex_in_files = models.CharField(max_length=16, blank=True)
    series_count = models.PositiveIntegerField(default=0)
    instance_count = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "study_instance_uid"], name="study_unique_per_case")
        ]


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    series_number = models.IntegerField(null=True, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=200, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    instance_count = models.PositiveIntegerField(default=0)
    preview_key = models.CharField(max_length=300, blank=True)
    # The instance count the preview was drawn at: a series that grew since gets a new preview.
    preview_instance_count = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["series_number", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "series_instance_uid"], name="series_unique_per_study")
        ]


class Instance(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    number_of_frames = models.PositiveIntegerField(default=1)
    slice_location = models.FloatField(null=True, blank=True)
    storage_key = models.CharField(max_length=300)
    size = models.BigIntegerField(default=0)
    preamble_cleared = models.BooleanField(default=False)
    # The upload the file came from: a retried ingest of the same upload is not a duplicate.
    upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="instances"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance_number", "id"]
        constraints = [
            models.UniqueConstraint(fields=["series", "sop_instance_uid"], name="instance_unique_per_series")
        ]


class Report(models.Model):
    """A report the patient uploaded (PDF, or a photo of a paper report)."""

    class Kind(models.TextChoices):
        RADIOLOGY = "radiology", "Radiology report"
        PATHOLOGY = "pathology", "Pathology report"
        CLINICAL = "clinical", "Clinical letter or summary"
        OTHER = "other", "Other"

    class Match(models.TextChoices):
        PENDING = "pending", "Not yet matched"
        MATCHED = "matched", "Matched automatically"
        UNMATCHED = "unmatched", "No matching study found"
        CORRECTED = "corrected", "Matched by staff"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="reports")
    upload = models.OneToOneField(Upload, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.RADIOLOGY)
    original_name = models.CharField(max_length=255, blank=True)  # patient data: never logged
    content_type = models.CharField(max_length=100)
    storage_key = models.CharField(max_length=300)
    size = models.BigIntegerField(default=0)
    extracted_text = models.TextField(blank=True)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    match_status = models.CharField(max_length=12, choices=Match.choices, default=Match.PENDING)
    match_reason = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(auto_now_add=True)


class FileProblem(models.Model):
    """A file of an upload that was set aside or changed, in words a patient understands."""

    class Code(models.TextChoices):
        NOT_DICOM = "not_dicom", "Not a medical image file"
        SKIPPED_PROGRAM = "skipped_program", "Viewer program or system file, skipped"
        TRUNCATED = "truncated", "The file is damaged or incomplete"
        UNSAFE_ARCHIVE = "unsafe_archive", "Unsafe archive entry, skipped"
        ARCHIVE_LIMIT = "archive_limit", "Archive too large or too many files"
        DUPLICATE = "duplicate", "Duplicate image, stored once"
        PREAMBLE_CLEARED = "preamble_cleared", "Suspicious file header removed"
        EMPTY = "empty", "Empty file"
        UNREADABLE = "unreadable", "Could not be read"
        INCONSISTENT_PATIENT = "inconsistent_patient", "Images of more than one patient"
        MISSING_FILES = "missing_files", "Images listed on the disc but not uploaded"
        REPORT_REFUSED = "report_refused", "Not a readable PDF or photo"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="file_problems")
    upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.CASCADE, related_name="problems"
    )
    path = models.CharField(max_length=1000, blank=True)  # inside the upload; patient data
    code = models.CharField(max_length=24, choices=Code.choices)
    message = models.CharField(max_length=300)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
