"""Writes of the patient portal: starting a case, saving each wizard step, submitting.

Every state change goes through ``intake.workflow.case_status_change``, which emails the
patient; nothing here sends email itself.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import User
from branding.selectors import brand_for_institution
from branding.services import LEGAL_TEXT_KINDS, legal_text_version_current
from imaging.exclusion import case_studies_choose, study_exclude
from imaging.identity import case_identity_refresh
from imaging.models import Report, Study
from intake.contact_email import patient_email_changed
from intake.drafts import MAX_OPEN_DRAFTS, TOO_MANY_DRAFTS, drafts_open_count
from intake.fees import case_payment_required, case_price_freeze
from intake.models import Case, CaseConsent
from intake.notifications import case_continue_link_email_send
from intake.selectors import (
    STEP_SLUGS,
    case_missing_items,
    institution_case_prefix,
)
from intake.status import case_number_assign
from intake.workflow import case_status_change
from tenants.models import Institution
from tenants.schema import current_institution

NOT_SUBMITTABLE = gettext_noop("This request has already been sent.")


class DraftLimitReached(ValidationError):
    """The owner already has as many unsent requests as one may keep open."""


class CaseIncomplete(ValidationError):
    """The case lacks something it needs before it can be sent (the messages say what)."""


def case_start(
    *, owner: User, submitter_relation: str = Case.Relation.SELF, submitter_name: str = ""
) -> Case:
    """A new draft case for ``owner``, with today's fee as its price; when they are the patient,
    their account's name and email are the patient's until they say otherwise."""
    is_self = submitter_relation == Case.Relation.SELF
    with transaction.atomic():
        # Serialised per owner (their row), so two tabs cannot both pass the cap.
        User.objects.select_for_update().filter(pk=owner.pk).first()
        open_drafts = drafts_open_count(owner=owner)
        if open_drafts >= MAX_OPEN_DRAFTS:
            raise DraftLimitReached(gettext(TOO_MANY_DRAFTS).format(count=open_drafts))
        case = Case.objects.create(
            owner=owner,
            submitter_relation=submitter_relation,
            submitter_name="" if is_self else (submitter_name or owner.full_name),
            patient_name=owner.full_name if is_self else "",
            patient_email=owner.email if is_self else "",
            wizard_step="patient",
        )
        case_price_freeze(case=case)
    return case


def case_wizard_step_set(*, case: Case, step: str) -> Case:
    """Remember the step the patient is on, so they come back to it."""
    if step not in STEP_SLUGS:
        raise ValueError(f"unknown wizard step {step!r}")
    if case.wizard_step != step:
        case.wizard_step = step
        case.save(update_fields=["wizard_step", "updated"])
    return case


def case_patient_save(
    *,
    case: Case,
    submitter_relation: str,
    submitter_name: str,
    patient_name: str,
    patient_birth_date: datetime.date,
    patient_sex: str,
    patient_email: str,
    patient_phone: str,
    consent: bool,
) -> Case:
    """Step 1. Consent is recorded once, with its time; unticking it later withdraws it."""
    previous_email = case.patient_email
    case.submitter_relation = submitter_relation
    case.submitter_name = "" if submitter_relation == Case.Relation.SELF else submitter_name
    case.patient_name = patient_name
    case.patient_birth_date = patient_birth_date
    case.patient_sex = patient_sex
    case.patient_email = patient_email
    case.patient_phone = patient_phone
    with transaction.atomic():
        if not consent:
            case.consented_at = None
        else:
            if case.consented_at is None:
                case.consented_at = timezone.now()
            case_consent_record(case=case)
        case.wizard_step = "question"
        case.save()
        patient_email_changed(case=case, previous=previous_email)
    # The studies already uploaded are compared with the patient as now declared.
    case_identity_refresh(case=case)
    return case


def case_consent_record(*, case: Case) -> list[CaseConsent]:
    """Record the versions of the institution's consent, terms and privacy texts the filer
    has just accepted. Nothing is added for a text whose accepted version is already recorded
    (saving step 1 again), so the rows show each version accepted and when it first was."""
    brand = brand_for_institution(institution=current_institution())
    if brand is None:
        return []
    now = timezone.now()
    recorded = set(CaseConsent.objects.filter(case=case).values_list("kind", "language", "sha256"))
    added = []
    for kind in LEGAL_TEXT_KINDS:
        # The version the filer read: in their language if the institution wrote one.
        version = legal_text_version_current(brand=brand, kind=kind)
        if (kind, version.language, version.sha256) not in recorded:
            added.append(
                CaseConsent(
                    case=case,
                    kind=kind,
                    language=version.language,
                    version=version.version,
                    sha256=version.sha256,
                    accepted_at=now,
                )
            )
    return CaseConsent.objects.bulk_create(added)


def case_question_save(
    *,
    case: Case,
    diagnosis_to_review: str,
    question: str,
    history: str,
    current_physician: str,
    urgency: str,
) -> Case:
    """Step 2."""
    case.diagnosis_to_review = diagnosis_to_review
    case.question = question
    case.history = history
    case.current_physician = current_physician
    case.urgency = urgency
    case.wizard_step = "images"
    case.save()
    return case


def case_submit(*, case: Case, institution: Institution) -> Case:
    """Send the case to the institution.

    Precondition: ``case`` was fetched through ``access_patient_case_for_edit`` (its owner is
    the caller). Raises ``CaseIncomplete`` naming every missing piece, and changes nothing then.
    A draft gets its case number and goes to SUBMITTED, or to AWAITING_PAYMENT when the
    institution charges (the payments app moves it on when the payment is confirmed). A case
    that was waiting for more information goes back to the care team's queue.
    """
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status not in (Case.Status.DRAFT, Case.Status.INFO_REQUESTED):
            raise CaseIncomplete(gettext(NOT_SUBMITTABLE))
        blocking, _ = case_missing_items(case=case)
        if blocking:
            raise CaseIncomplete(blocking)
        if case.status == Case.Status.INFO_REQUESTED:
            case_status_change(case=case, status=Case.Status.SUBMITTED)
            return case_wizard_step_set(case=case, step="submitted")
        case_number_assign(case=case, prefix=institution_case_prefix(institution=institution))
        if case_payment_required(case=case):
            case_price_freeze(case=case)  # the payment page needs the record (a case made before it)
            case_wizard_step_set(case=case, step="payment")
            return case_status_change(case=case, status=Case.Status.AWAITING_PAYMENT)
        case_wizard_step_set(case=case, step="submitted")
        return case_status_change(case=case, status=Case.Status.SUBMITTED)


def case_studies_select(*, case: Case, send_ids: list[int], by: User) -> tuple[int, int]:
    """The patient's choice of studies to send (every other study is left out, not deleted).

    Precondition: ``case`` came from ``access_patient_case_for_edit``. Returns (sent, left out).
    """
    return case_studies_choose(case=case, included_ids=send_ids, by=by)


def case_study_remove(*, case: Case, study_id: int, by: User) -> Study | None:
    """The patient says a study is not the patient's: it is left out (kept, not deleted, and
    staff can see that it was removed and why). None if ``study_id`` is not of ``case``."""
    study = Study.objects.filter(case=case, pk=study_id).first()
    if study is None:
        return None
    return study_exclude(study=study, by=by, reason=Study.Exclusion.PATIENT_NOT_THEIRS)


def case_report_kinds_set(*, case: Case, kinds: dict[str, str]) -> int:
    """Set the kind of the case's reports named by public id; unknown ids or kinds are ignored.
    Returns how many changed. Precondition: ``case`` came from an access helper of its owner."""
    changed = 0
    for public_id, kind in kinds.items():
        if kind not in Report.Kind.values:
            continue
        try:
            changed += (
                Report.objects.filter(case=case, public_id=public_id).exclude(kind=kind).update(kind=kind)
            )
        except ValidationError:  # not a uuid
            continue
    return changed


def case_continue_link_send(*, case: Case) -> None:
    """Email the filer a link to continue ``case`` on a computer (written to the outbox, sent
    by a worker once this commits). Precondition: the caller owns the case."""
    with transaction.atomic():
        case_continue_link_email_send(case=case)
