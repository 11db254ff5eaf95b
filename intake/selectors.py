"""Reads for the patient portal: the wizard's steps, what a case still lacks, upload progress.

Sentences a patient reads are module constants, reused by the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils.translation import gettext, gettext_noop, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from intake.fees import case_payment_required
from intake.models import Case
from intake.overview import case_upload_overview
from tenants.models import Institution

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# What a case still lacks, in plain words. "Blocking" ones stop the submission.
MISSING_PATIENT = gettext_noop("The patient's details are not complete (step 1).")
MISSING_CONSENT = gettext_noop("You have not yet agreed to the terms (step 1).")
MISSING_QUESTION = gettext_noop("You have not yet told us what you would like reviewed (step 2).")
MISSING_FILES = gettext_noop("No usable images or reports yet: please add at least one (steps 3 and 4).")
STILL_CHECKING_NOTHING_USABLE = gettext_noop(
    "Your files are still being checked. Please wait a moment: a request needs at least one image "
    "or report we could use."
)
NOT_THEIRS = _(
    "Some images seem to be of someone else. Please look at the studies below and remove those "
    "that are not the patient's."
)
NO_IMAGES_YET = gettext_noop("No images yet. The physician can only give an opinion on the report.")
IMAGES_NO_REPORT = gettext_noop(
    "Images but no report. A report from the original imaging helps the physician; add one if you have it."
)
MORE_THAN_ONE_PATIENT = gettext_noop(
    "Images of more than one patient found. Please check that every image belongs to this patient."
)
STILL_PROCESSING = gettext_noop(
    "Some files are still being checked. You can submit now; we will finish in the background."
)


def unfinished_message(count: int) -> str:
    return ngettext(
        "%(count)s file did not finish sending. Choose the same folder or files again on the images "
        "step to continue; it is not part of the request until then.",
        "%(count)s files did not finish sending. Choose the same folder or files again on the images "
        "step to continue; they are not part of the request until then.",
        count,
    ) % {"count": count}


def files_set_aside_message(count: int) -> str:
    return ngettext(
        "%(count)s file could not be used. See the list on the images step.",
        "%(count)s files could not be used. See the list on the images step.",
        count,
    ) % {"count": count}


def left_out_message(count: int) -> str:
    return ngettext(
        "%(count)s study is left out: it will not be sent to the physicians. It stays stored with "
        "this request, seen only by you, and you can tick it again until you send the request.",
        "%(count)s studies are left out: they will not be sent to the physicians. They stay stored "
        "with this request, seen only by you, and you can tick them again until you send the request.",
        count,
    ) % {"count": count}


@dataclass(frozen=True)
class WizardStep:
    slug: str
    title: StrOrPromise
    url_name: str


# The steps in order. "payment" is left out for institutions that do not charge.
ALL_STEPS: tuple[WizardStep, ...] = (
    WizardStep("patient", _("The patient"), "intake:case_patient"),
    WizardStep("question", _("Your question"), "intake:case_question"),
    WizardStep("images", _("Images"), "intake:case_images"),
    WizardStep("reports", _("Reports"), "intake:case_reports"),
    WizardStep("summary", _("Check and send"), "intake:case_summary"),
    WizardStep("payment", _("Payment"), "intake:case_payment"),
    WizardStep("submitted", _("Sent"), "intake:case_submitted"),
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


def case_patient_details_complete(*, case: Case) -> bool:
    return bool(case.patient_name and case.patient_birth_date and case.patient_sex)


def case_missing_items(*, case: Case, overview: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(blocking, advisory): what stops the submission, and what the patient should know."""
    overview = overview if overview is not None else case_upload_overview(case=case)
    blocking: list[str] = []
    advisory: list[str] = []
    if not case_patient_details_complete(case=case):
        blocking.append(gettext(MISSING_PATIENT))
    if case.consented_at is None:
        blocking.append(gettext(MISSING_CONSENT))
    if not (case.question.strip() or case.diagnosis_to_review.strip()):
        blocking.append(gettext(MISSING_QUESTION))
    # Usable: an image in a study that is to be sent, a report that was kept (not refused).
    has_images = overview["image_count"] > 0
    has_reports = overview["usable_reports"] > 0
    checking = overview["uploads"]["processing"] + overview["reports_checking"]
    if not has_images and not has_reports:
        blocking.append(gettext(STILL_CHECKING_NOTHING_USABLE if checking else MISSING_FILES))
    elif not has_images:
        advisory.append(gettext(NO_IMAGES_YET))
    elif not has_reports:
        advisory.append(gettext(IMAGES_NO_REPORT))
    if overview["not_theirs_count"]:
        advisory.append(str(NOT_THEIRS))
    if overview["more_than_one_patient"]:
        advisory.append(gettext(MORE_THAN_ONE_PATIENT))
    if checking and (has_images or has_reports):
        advisory.append(gettext(STILL_PROCESSING))
    if overview["uploads"]["unfinished"]:
        advisory.append(unfinished_message(overview["uploads"]["unfinished"]))
    if overview["left_out_count"]:
        advisory.append(left_out_message(overview["left_out_count"]))
    if overview["problem_count"]:
        advisory.append(files_set_aside_message(overview["problem_count"]))
    return blocking, advisory


@dataclass(frozen=True)
class PatientStatus:
    label: str
    explanation: str
    tone: str  # "neutral", "progress", "action", "done", "stopped"


PATIENT_STATUSES: dict[str, PatientStatus] = {
    Case.Status.DRAFT: PatientStatus(
        gettext_noop("Not sent yet"),
        gettext_noop("You have started this request. Continue where you left off."),
        "action",
    ),
    Case.Status.AWAITING_PAYMENT: PatientStatus(
        gettext_noop("Waiting for payment"),
        gettext_noop("Your request is ready. It is sent to the physicians once the payment is confirmed."),
        "action",
    ),
    Case.Status.SUBMITTED: PatientStatus(
        gettext_noop("Received"),
        gettext_noop("We have your request. A coordinator will pass it to a physician."),
        "progress",
    ),
    Case.Status.ASSIGNED: PatientStatus(
        gettext_noop("Received"), gettext_noop("A physician has been chosen to review your case."), "progress"
    ),
    Case.Status.IN_REVIEW: PatientStatus(
        gettext_noop("In review"),
        gettext_noop("A physician is reviewing your images and reports."),
        "progress",
    ),
    Case.Status.INFO_REQUESTED: PatientStatus(
        gettext_noop("More information needed"),
        gettext_noop("The care team needs something more from you before they can continue."),
        "action",
    ),
    Case.Status.OPINION_DRAFTED: PatientStatus(
        gettext_noop("In review"), gettext_noop("The physician is finishing the written opinion."), "progress"
    ),
    Case.Status.RELEASED: PatientStatus(
        gettext_noop("Opinion ready"), gettext_noop("Your second opinion is ready to read."), "done"
    ),
    Case.Status.CLOSED: PatientStatus(
        gettext_noop("Closed"), gettext_noop("This case is closed."), "neutral"
    ),
    Case.Status.DECLINED: PatientStatus(
        gettext_noop("Declined"),
        gettext_noop("The care team could not take this case. They have written to you by email."),
        "stopped",
    ),
    Case.Status.WITHDRAWN: PatientStatus(
        gettext_noop("Withdrawn"), gettext_noop("You withdrew this request."), "stopped"
    ),
}

# The milestones shown on the status page, and the states that have reached each one.
MILESTONES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        gettext_noop("Sent"),
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
        gettext_noop("In review"),
        frozenset(
            {Case.Status.IN_REVIEW, Case.Status.OPINION_DRAFTED, Case.Status.RELEASED, Case.Status.CLOSED}
        ),
    ),
    (gettext_noop("Opinion ready"), frozenset({Case.Status.RELEASED, Case.Status.CLOSED})),
)


def case_patient_status(*, case: Case) -> PatientStatus:
    """How the patient's case stands, in the page's language."""
    status = PATIENT_STATUSES.get(case.status, PATIENT_STATUSES[Case.Status.SUBMITTED])
    return PatientStatus(gettext(status.label), gettext(status.explanation), status.tone)


def case_milestones(*, case: Case) -> list[dict[str, Any]]:
    return [{"label": gettext(label), "reached": case.status in reached} for label, reached in MILESTONES]
