"""Everything a case holds as files: the uploads received for it and what ingest makes of them
(studies, series and instances of DICOM images; reports; problems found with files).

The rows belong to a case (``intake.Case``, named by string: this app sits below intake and never
imports it). Names, dates of birth and paths here are patient data: they never go into logs, URLs
or error pages. Storage keys are opaque (uuids), never file names.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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
        IMAGING = "imaging", _("Imaging")
        REPORT = "report", _("Report")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="uploads")
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
    # Ingest runs that claimed it: more than one means a run before this one touched it
    # (its worker died, or storage failed and the run was retried).
    ingest_attempts = models.PositiveIntegerField(default=0)
    # A failure of ours (storage full or unreachable) that keeps the upload from being
    # processed; shown to staff as a system problem while the patient reads "still being
    # checked". Cleared when the upload is processed.
    system_problem = models.CharField(max_length=300, blank=True)


class StudyQuerySet(models.QuerySet["Study"]):
    def included(self) -> StudyQuerySet:
        """The studies that are part of the case: not left out by the patient or by staff."""
        return self.filter(excluded_at__isnull=True)

    def excluded(self) -> StudyQuerySet:
        return self.filter(excluded_at__isnull=False)


class Study(models.Model):
    """One study (an examination) found in a case's uploads.

    Identity (``imaging.identity``): ``identity_status`` says whether the patient named in the
    files is the patient declared on the case; computed when the study is indexed and again
    when the declared patient changes. ``identity_reason`` says what differs, in words that
    hold no patient data (safe in lists and logs).

    Exclusion: a study the patient unticked or removed (not theirs), or that staff excluded,
    keeps its rows and files but is not part of the case: ``excluded_at`` is set, and readers
    that show the case to reviewers use ``Study.objects.included()``.
    """

    class Identity(models.TextChoices):
        UNKNOWN = "unknown", _("Not enough in the files to compare")
        MATCHES = "matches", _("The files name the declared patient")
        MISMATCH = "mismatch", _("The files name someone else")

    class Exclusion(models.TextChoices):
        PATIENT_UNTICKED = "patient_unticked", _("Left out by the patient")
        PATIENT_NOT_THEIRS = "patient_not_theirs", _("Removed by the patient: not their images")
        STAFF = "staff", _("Excluded by staff")

    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=200, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    study_id = models.CharField(max_length=16, blank=True)  # Study ID (0020,0010), as in the files
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
    identity_status = models.CharField(
        max_length=10, choices=Identity.choices, default=Identity.UNKNOWN, db_index=True
    )
    identity_reason = models.CharField(max_length=200, blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    excluded_reason = models.CharField(max_length=20, choices=Exclusion.choices, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = StudyQuerySet.as_manager()

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
    bits_allocated = models.PositiveSmallIntegerField(null=True, blank=True)
    slice_location = models.FloatField(null=True, blank=True)
    # The image's bytes (imaging.instance_files): the whole object under storage_key, or, when
    # storage_offset > 0, its ``size`` bytes from there (an image kept where it lies in its batch).
    storage_key = models.CharField(max_length=300)
    storage_offset = models.BigIntegerField(default=0)
    size = models.BigIntegerField(default=0)
    preamble_cleared = models.BooleanField(default=False)
    # Where the header and each frame lie in the stored file (imaging.pixel_index), so metadata
    # and frames are read in ranges, not whole. Made at ingest; None until first read for
    # instances stored before (then made). header_length 0: the file is always read whole.
    header_length = models.BigIntegerField(null=True, blank=True)
    pixel_data_offset = models.BigIntegerField(null=True, blank=True)
    frames_encapsulated = models.BooleanField(default=False)
    frame_spans = models.BinaryField(null=True, blank=True, editable=False)
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
        RADIOLOGY = "radiology", _("Radiology report")
        PATHOLOGY = "pathology", _("Pathology report")
        CLINICAL = "clinical", _("Clinical letter or summary")
        OTHER = "other", _("Other")
        # Found on a disc, or sent before the patient said: they are asked.
        UNKNOWN = "unknown", _("Type not chosen yet")

    class Match(models.TextChoices):
        PENDING = "pending", "Not yet matched"
        MATCHED = "matched", "Matched automatically"
        UNMATCHED = "unmatched", "No matching study found"
        CORRECTED = "corrected", "Matched by staff"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="reports")
    upload = models.OneToOneField(Upload, null=True, blank=True, on_delete=models.SET_NULL)
    # A report found inside an imaging upload (a PDF on a disc): that upload, and its path there.
    source_upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="disc_reports"
    )
    source_path = models.CharField(max_length=1000, blank=True)  # patient data
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.UNKNOWN)
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
        NOT_DICOM = "not_dicom", _("Not a medical image file")
        SKIPPED_PROGRAM = "skipped_program", _("Viewer program or system file, skipped")
        TRUNCATED = "truncated", _("The file is damaged or incomplete")
        UNSAFE_ARCHIVE = "unsafe_archive", _("Unsafe archive entry, skipped")
        ARCHIVE_LIMIT = "archive_limit", _("Archive too large or too many files")
        DUPLICATE = "duplicate", _("Duplicate image, stored once")
        PREAMBLE_CLEARED = "preamble_cleared", _("Suspicious file header removed")
        EMPTY = "empty", _("Empty file")
        UNREADABLE = "unreadable", _("Could not be read")
        INCONSISTENT_PATIENT = "inconsistent_patient", _("Images of more than one patient")
        MISSING_FILES = "missing_files", _("Images listed on the disc but not uploaded")
        REPORT_REFUSED = "report_refused", _("Not a readable PDF or photo")

    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="file_problems")
    upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.CASCADE, related_name="problems"
    )
    path = models.CharField(max_length=1000, blank=True)  # inside the upload; patient data
    code = models.CharField(max_length=24, choices=Code.choices)
    message = models.CharField(max_length=300)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class IntegrationCredential(models.Model):
    """A machine client's key to this institution's imaging API (DICOMweb): a PACS pulling
    studies, a referring clinic's system. Created and revoked by the institution's admins.

    The secret is shown once, at creation; only its SHA-256 is kept, so a database backup holds
    no usable key. Every request made with it is audited under the credential's name.
    """

    class Scope(models.TextChoices):
        DICOMWEB_READ = "dicomweb.read", "Search and read studies (QIDO-RS, WADO-RS)"
        FHIR_READ = "fhir.read", "Read released opinions as FHIR DiagnosticReports"
        DICOMWEB_WRITE = "dicomweb.write", "Send studies into cases (STOW-RS)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    # The first characters of the key, shown in lists so admins can tell keys apart.
    prefix = models.CharField(max_length=16)
    secret_sha256 = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created"]


class PacsDestination(models.Model):
    """Where the institution's PACS takes studies: a DICOMweb STOW-RS URL, or a DICOM (DIMSE)
    node (AE title, host, port). Set by the institution's admins; staff send cases to it.

    The STOW password or token is stored encrypted (Fernet, ``MFA_ENCRYPTION_KEYS``): a database
    backup alone does not hold a usable credential for the hospital's PACS.
    """

    class Kind(models.TextChoices):
        DICOMWEB = "dicomweb", "DICOMweb (STOW-RS)"
        DIMSE = "dimse", "DICOM (C-STORE)"

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BASIC = "basic", "User name and password"
        BEARER = "bearer", "Bearer token"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # DICOMweb: the service root (STOW-RS posts to <url>/studies).
    stow_url = models.URLField(max_length=500, blank=True)
    auth = models.CharField(max_length=10, choices=Auth.choices, default=Auth.NONE)
    username = models.CharField(max_length=200, blank=True)
    secret_encrypted = models.TextField(blank=True)
    # DIMSE: the PACS's AE title (called), ours (calling), and where it listens.
    called_ae = models.CharField(max_length=16, blank=True)
    calling_ae = models.CharField(max_length=16, blank=True)
    host = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    use_tls = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    # Removed destinations stay (their sends' history refers to them) but take no new sends.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]


class PacsSend(models.Model):
    """One study of a case sent (or being sent) to a destination; its status is shown on the
    case page. Delivered by a worker with retries; never inside a request."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to be sent"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Failed, will retry"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="pacs_sends")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="pacs_sends")
    destination = models.ForeignKey(PacsDestination, on_delete=models.PROTECT, related_name="sends")
    deidentified = models.BooleanField(default=False)
    # A de-identified send's Patient ID (shared by the studies of one request) and its UID map,
    # kept so a retry sends the same UIDs again rather than a second copy under new ones.
    deid_pseudonym = models.CharField(max_length=32, blank=True)
    deid_uids = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    instances_total = models.PositiveIntegerField(default=0)
    instances_sent = models.PositiveIntegerField(default=0)
    # Why the last attempt failed, in words for staff (never patient data: no names, no UIDs).
    error_message = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    # Set while a worker holds the send (claimed by a conditional UPDATE); a worker that died
    # leaves it, and the send may be claimed again once it is old.
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]


class ImageAnnotation(models.Model):
    """A measurement or a key image a reviewer made in the viewer, saved with the case.

    Points are in image pixel coordinates of one frame ([column, row] pairs, as the viewer's
    tools place them), so they can be drawn again on the same pixels whatever the zoom. The
    label is the measurement as the reviewer read it ("Length 23.4 mm", "Mean 41 HU, SD 6").
    A key image keeps the window the reviewer chose, so the opinion PDF shows what they saw.
    """

    class Kind(models.TextChoices):
        LENGTH = "length", "Length"
        ANGLE = "angle", "Angle"
        ELLIPSE = "ellipse", "Ellipse region"
        KEY_IMAGE = "key_image", "Key image"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey("intake.Case", on_delete=models.CASCADE, related_name="image_annotations")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="annotations")
    frame = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    points = models.JSONField(default=list, blank=True)
    label = models.CharField(max_length=200, blank=True)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]
