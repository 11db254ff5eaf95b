"""Reads for the patient portal: the wizard's steps, what a case still lacks, upload progress.

Sentences a patient reads are module constants, reused by the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import IntegerField, QuerySet, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from accounts.models import User
from imaging.ingest.selectors import case_problems
from imaging.models import FileProblem, Report, Study, Upload
from intake.fees import case_payment_required
from intake.models import Case
from tenants.models import Institution

# What a case still lacks, in plain words. "Blocking" ones stop the submission.
MISSING_PATIENT = "The patient's details are not complete (step 1)."
MISSING_CONSENT = "You have not yet agreed to the terms (step 1)."
MISSING_QUESTION = "You have not yet told us what you would like reviewed (step 2)."
MISSING_FILES = "No images or reports yet: please add at least one (steps 3 and 4)."
NO_IMAGES_YET = "No images yet. The physician can only give an opinion on the report."
IMAGES_NO_REPORT = (
    "Images but no report. A report from the original imaging helps the physician; add one if you have it."
)
MORE_THAN_ONE_PATIENT = (
    "Images of more than one patient found. Please check that every image belongs to this patient."
)
STILL_PROCESSING = "Some files are still being checked. You can submit now; we will finish in the background."
FILES_SET_ASIDE = "{count} file(s) could not be used. See the list on the images step."


@dataclass(frozen=True)
class WizardStep:
    slug: str
    title: str
    url_name: str


# The steps in order. "payment" is left out for institutions that do not charge.
ALL_STEPS: tuple[WizardStep, ...] = (
    WizardStep("patient", "The patient", "intake:case_patient"),
    WizardStep("question", "Your question", "intake:case_question"),
    WizardStep("images", "Images", "intake:case_images"),
    WizardStep("reports", "Reports", "intake:case_reports"),
    WizardStep("summary", "Check and send", "intake:case_summary"),
    WizardStep("payment", "Payment", "intake:case_payment"),
    WizardStep("submitted", "Sent", "intake:case_submitted"),
)
STEP_SLUGS = frozenset(step.slug for step in ALL_STEPS)


def case_wizard_steps(*, case: Case, payment_required: bool | None = None) -> list[WizardStep]:
    if payment_required is None:
        payment_required = case_payment_required(case=case)
    return [step for step in ALL_STEPS if payment_required or step.slug != "payment"]


def case_list_for_patient(*, user: User) -> QuerySet[Case]:
    """The cases ``user`` started, newest first (current institution only)."""
    return Case.objects.filter(owner=user).order_by("-created")


def case_reusable_draft(*, user: User) -> Case | None:
    """A draft ``user`` started but did not fill in yet (e.g. the one made at sign-up), so
    "Request a second opinion" does not pile up empty drafts."""
    return (
        Case.objects.filter(owner=user, status=Case.Status.DRAFT, consented_at__isnull=True, question="")
        .exclude(uploads__isnull=False)
        .order_by("-created")
        .first()
    )


def institution_case_prefix(*, institution: Institution) -> str:
    """Initials of the institution's name ("Northfield Neurological Institute" -> "NNI"),
    or its slug in capitals when the name gives fewer than two letters."""
    small_words = {"of", "the", "and", "for", "at", "de", "la", "&"}
    words = [word for word in re.split(r"[^A-Za-z0-9]+", institution.name) if word]
    initials = "".join(word[0] for word in words if word.lower() not in small_words).upper()
    if len(initials) < 2:
        initials = re.sub(r"[^A-Z0-9]", "", institution.slug.upper())
    return initials[:8] or "CASE"


def case_upload_overview(*, case: Case) -> dict[str, Any]:
    """What the server made of the files so far: counts, studies, reports and problems.

    Served as JSON to the images and reports steps (polled while files are processed) and
    shown on the summary. File paths are the patient's own data, shown only to them.
    """
    uploads = case.uploads.exclude(status=Upload.Status.EXPIRED)
    # Files, not uploads: a batch the browser packed counts the files it holds.
    files = Coalesce(Cast(KeyTextTransform("batchFiles", "metadata"), IntegerField()), Value(1))
    by_status = dict(
        uploads.filter(kind=Upload.Kind.IMAGING).values_list("status").annotate(n=Sum(files)).order_by()
    )
    processing = sum(
        by_status.get(status, 0)
        for status in (Upload.Status.RECEIVING, Upload.Status.RECEIVED, Upload.Status.INGESTING)
    )
    studies = list(
        Study.objects.filter(case=case).values(
            "study_date", "description", "modalities", "series_count", "instance_count"
        )
    )
    totals = Study.objects.filter(case=case).aggregate(
        series=Sum("series_count"), images=Sum("instance_count")
    )
    # Grouped by kind, most important first; what needs nothing from the patient is folded.
    problems = [
        {
            "title": group.title,
            "messages": group.messages,
            "count": group.count,
            "files": [path.rsplit("/", 1)[-1] for path in group.paths],
            "informational": group.informational,
        }
        for group in case_problems(case=case)
    ]
    report_uploads = uploads.filter(kind=Upload.Kind.REPORT).order_by("created")
    reports_by_upload = {report.upload_id: report for report in Report.objects.filter(case=case)}
    kind_labels = dict(Report.Kind.choices)
    reports = []
    for upload in report_uploads:
        report = reports_by_upload.get(upload.pk)
        kind = report.kind if report else str(upload.metadata.get("reportKind", "other"))
        reports.append(
            {
                "name": report.original_name if report else str(upload.metadata.get("filename", "")),
                "kind": kind_labels.get(kind, kind_labels["other"]),
                "complete": upload.status != Upload.Status.RECEIVING,
            }
        )
    return {
        "uploads": {
            "imaging": sum(by_status.values()),
            "processing": processing,
            "done": by_status.get(Upload.Status.DONE, 0),
            "failed": by_status.get(Upload.Status.FAILED, 0),
        },
        "studies": [
            {
                "date": study["study_date"].isoformat() if study["study_date"] else "",
                "description": study["description"],
                "modalities": study["modalities"],
                "series": study["series_count"],
                "images": study["instance_count"],
            }
            for study in studies
        ],
        "study_count": len(studies),
        "series_count": totals["series"] or 0,
        "image_count": totals["images"] or 0,
        "problems": problems,
        "problem_count": sum(group["count"] for group in problems if not group["informational"]),
        "more_than_one_patient": case_has_more_than_one_patient(case=case),
        "reports": reports,
    }


def case_has_more_than_one_patient(*, case: Case) -> bool:
    if FileProblem.objects.filter(case=case, code=FileProblem.Code.INCONSISTENT_PATIENT).exists():
        return True
    people = {
        (name.strip().upper(), birth.strip())
        for name, birth in Study.objects.filter(case=case).values_list(
            "patient_name_in_files", "patient_birth_date_in_files"
        )
        if name.strip() or birth.strip()
    }
    return len(people) > 1


def case_patient_details_complete(*, case: Case) -> bool:
    return bool(case.patient_name and case.patient_birth_date and case.patient_sex)


def case_missing_items(*, case: Case, overview: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(blocking, advisory): what stops the submission, and what the patient should know."""
    overview = overview if overview is not None else case_upload_overview(case=case)
    blocking: list[str] = []
    advisory: list[str] = []
    if not case_patient_details_complete(case=case):
        blocking.append(MISSING_PATIENT)
    if case.consented_at is None:
        blocking.append(MISSING_CONSENT)
    if not (case.question.strip() or case.diagnosis_to_review.strip()):
        blocking.append(MISSING_QUESTION)
    has_images = overview["uploads"]["imaging"] > 0
    has_reports = bool(overview["reports"])
    if not has_images and not has_reports:
        blocking.append(MISSING_FILES)
    elif not has_images:
        advisory.append(NO_IMAGES_YET)
    elif not has_reports:
        advisory.append(IMAGES_NO_REPORT)
    if overview["more_than_one_patient"]:
        advisory.append(MORE_THAN_ONE_PATIENT)
    if overview["uploads"]["processing"]:
        advisory.append(STILL_PROCESSING)
    if overview["problem_count"]:
        advisory.append(FILES_SET_ASIDE.format(count=overview["problem_count"]))
    return blocking, advisory


@dataclass(frozen=True)
class PatientStatus:
    label: str
    explanation: str
    tone: str  # "neutral", "progress", "action", "done", "stopped"


PATIENT_STATUSES: dict[str, PatientStatus] = {
    Case.Status.DRAFT: PatientStatus(
        "Not sent yet", "You have started this request. Continue where you left off.", "action"
    ),
    Case.Status.AWAITING_PAYMENT: PatientStatus(
        "Waiting for payment",
        "Your request is ready. It is sent to the physicians once the payment is confirmed.",
        "action",
    ),
    Case.Status.SUBMITTED: PatientStatus(
        "Received", "We have your request. A coordinator will pass it to a physician.", "progress"
    ),
    Case.Status.ASSIGNED: PatientStatus(
        "Received", "A physician has been chosen to review your case.", "progress"
    ),
    Case.Status.IN_REVIEW: PatientStatus(
        "In review", "A physician is reviewing your images and reports.", "progress"
    ),
    Case.Status.INFO_REQUESTED: PatientStatus(
        "More information needed",
        "The care team needs something more from you before they can continue.",
        "action",
    ),
    Case.Status.OPINION_DRAFTED: PatientStatus(
        "In review", "The physician is finishing the written opinion.", "progress"
    ),
    Case.Status.RELEASED: PatientStatus("Opinion ready", "Your second opinion is ready to read.", "done"),
    Case.Status.CLOSED: PatientStatus("Closed", "This case is closed.", "neutral"),
    Case.Status.DECLINED: PatientStatus(
        "Declined", "The care team could not take this case. They have written to you by email.", "stopped"
    ),
}

# The milestones shown on the status page, and the states that have reached each one.
MILESTONES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "Sent",
        frozenset(
            {
                Case.Status.SUBMITTED,
                Case.Status.ASSIGNED,
                Case.Status.IN_REVIEW,
                Case.Status.INFO_REQUESTED,
                Case.Status.OPINION_DRAFTED,
                Case.Status.RELEASED,
                Case.Status.CLOSED,
            }
        ),
    ),
    (
        "In review",
        frozenset(
            {Case.Status.IN_REVIEW, Case.Status.OPINION_DRAFTED, Case.Status.RELEASED, Case.Status.CLOSED}
        ),
    ),
    ("Opinion ready", frozenset({Case.Status.RELEASED, Case.Status.CLOSED})),
)


def case_patient_status(*, case: Case) -> PatientStatus:
    return PATIENT_STATUSES.get(case.status, PATIENT_STATUSES[Case.Status.SUBMITTED])


def case_milestones(*, case: Case) -> list[dict[str, Any]]:
    return [{"label": label, "reached": case.status in reached} for label, reached in MILESTONES]
