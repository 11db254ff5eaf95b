"""Writes of the review workspace: roster, assignment, notes, the opinion's life, outcomes.

Each function is one business step, keyword-only, and raises ``ReviewError`` with a message a
person can act on (the module constants below, which the tests reuse). Status changes go through
``intake.workflow.case_status_change`` so the patient gets the one email each change deserves.
"""

# long module: the workspace's business steps in the order a case meets them (sections headed
# below); they share the ReviewError messages and the status-change rule.

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.signals import roles_changed
from imaging.ingest.reports import report_match_set as intake_report_match_set
from imaging.models import Report, Study
from intake.models import Case
from intake.workflow import CaseTransitionRefused
from intake.workflow import case_status_change as _case_status_change
from payments.services import RefundOutcome, case_refund
from review.fhir_push import fhir_push_enqueue
from review.models import (
    CaseAssignment,
    CaseNote,
    FollowUpQuestion,
    Opinion,
    Outcome,
    ReviewerProfile,
    ReviewSettings,
)
from review.selectors import OPEN_STATES, review_settings_get, reviewer_loads
from storage.tenant import tenant_storage
from tenants.models import Institution, InstitutionSettings
from tenants.schema import current_institution

logger = logging.getLogger(__name__)

NO_REVIEWER_MESSAGE = (
    "No reviewer can take this case now: every reviewer is unavailable or at their maximum of open cases."
)
NOT_INVITED_STAFF_MESSAGE = "Only people who joined through a staff invitation can hold staff roles."
NOT_A_REVIEWER_MESSAGE = "Choose an active reviewer from the roster."
NOT_ASSIGNABLE_MESSAGE = "This case cannot be assigned in its current state."
OPINION_SIGNED_MESSAGE = "This opinion is signed and can no longer be changed."
OPINION_INCOMPLETE_MESSAGE = (
    "Before signing, fill in the findings and the impression, "
    "and choose the agreement and the recommendation."
)
WRONG_SECRET_MESSAGE = "That password or authenticator code is not correct; the opinion was not signed."  # noqa: S105
PROOF_NEEDED_MESSAGE = (
    "Confirm it is you: type your password or authenticator code to sign (your sign-in was more "
    "than a few minutes ago). The opinion was not signed."
)
NOT_SIGNED_MESSAGE = "The opinion must be signed before it is released."
ALREADY_RELEASED_MESSAGE = "This opinion has already been released."
NOT_RELEASED_MESSAGE = "Follow-up questions can be asked once the opinion is released."
FOLLOW_UP_LIMIT_MESSAGE = (
    "You have asked the {limit} follow-up questions this institution answers for a case."
)
EMPTY_TEXT_MESSAGE = "Please write something first."
DECLINE_REASON_MESSAGE = "Give the patient a reason for declining."
INFO_NOTE_MESSAGE = "Tell the patient what information you need."
NOT_OPEN_MESSAGE = "This case is not open any more."
WRONG_STUDY_MESSAGE = "Choose one of this case's studies."

# Cases in these states are finished: nothing but outcomes and follow-up answers change.
FINISHED_STATES = (Case.Status.RELEASED, Case.Status.CLOSED, Case.Status.DECLINED, Case.Status.WITHDRAWN)


class ReviewError(Exception):
    """A refused step; ``str(error)`` is the message to show."""


def case_status_change(*, case: Case, status: str, note: str = "") -> Case:
    """``intake.workflow.case_status_change``, its refusal (the case moved meanwhile, or the
    move is not allowed) told as a ``ReviewError`` like every other refusal of this module."""
    try:
        return _case_status_change(case=case, status=status, note=note)
    except CaseTransitionRefused as error:
        raise ReviewError(str(error)) from error


# --- Settings and roster ----------------------------------------------------------------------


def review_settings_update(
    *,
    turnaround_business_days: int,
    soon_due_business_days: int,
    session_idle_minutes: int,
    reviewers_see_only_assigned: bool,
    follow_up_questions_allowed: int,
    peer_review_percent: int | None = None,
) -> ReviewSettings:
    # The cached row of this request (updated in place, so the rest of the request sees the
    # change); an unsaved row of defaults if the institution never saved its settings.
    InstitutionSettings.objects.update_or_create(
        institution=current_institution(), defaults={"turnaround_business_days": turnaround_business_days}
    )
    row = review_settings_get()
    row.soon_due_business_days = soon_due_business_days
    row.session_idle_minutes = session_idle_minutes
    row.reviewers_see_only_assigned = reviewers_see_only_assigned
    row.follow_up_questions_allowed = follow_up_questions_allowed
    if peer_review_percent is not None:
        row.peer_review_percent = peer_review_percent
    row.save()
    return row


def staff_member_update(
    *,
    user: User,
    by: User | None,
    is_institution_admin: bool,
    is_coordinator: bool,
    is_reviewer: bool,
    credentials: str,
    specialties: str,
    title: str = "",
    modalities: str,
    available: bool,
    max_open_cases: int,
) -> User:
    """Set a staff member's roles and, for reviewers, their roster entry.

    Precondition: ``user.is_invited_staff`` (the access check of the roster): accounts that did
    not join through an invitation never hold staff roles. Every change of roles is audited."""
    if not user.is_invited_staff:
        raise ReviewError(NOT_INVITED_STAFF_MESSAGE)
    before = user.role_names
    user.is_institution_admin = is_institution_admin
    user.is_coordinator = is_coordinator
    user.is_reviewer = is_reviewer
    user.save(update_fields=["is_institution_admin", "is_coordinator", "is_reviewer"])
    if user.role_names != before:
        roles_changed.send(sender=User, user=user, by=by, roles=user.role_names, reason="roster")
    profile, _ = ReviewerProfile.objects.get_or_create(user=user)
    profile.credentials = credentials.strip()
    profile.title = title.strip()
    profile.specialties = ",".join(s.strip().lower() for s in specialties.split(",") if s.strip())
    profile.modalities = ",".join(m.strip().upper() for m in modalities.split(",") if m.strip())
    profile.available = available
    profile.max_open_cases = max_open_cases
    profile.save()
    return user


# --- Assignment ---------------------------------------------------------------------------------


# A case can be given (again) to a reviewer until its opinion is signed.
ASSIGNABLE_STATES = (
    Case.Status.SUBMITTED,
    Case.Status.ASSIGNED,
    Case.Status.IN_REVIEW,
    Case.Status.INFO_REQUESTED,
)


def _assignable(case: Case) -> None:
    if case.status not in ASSIGNABLE_STATES:
        raise ReviewError(NOT_ASSIGNABLE_MESSAGE)
    opinion = Opinion.objects.filter(case=case).first()
    if opinion is not None and opinion.is_signed:
        raise ReviewError(NOT_ASSIGNABLE_MESSAGE)


@transaction.atomic
def case_assign(*, case: Case, reviewer: User, by: User, by_rules: bool = False) -> CaseAssignment:
    """Give ``case`` to ``reviewer`` (replacing any earlier reviewer)."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    _assignable(case)
    if not (reviewer.is_reviewer and reviewer.is_active):
        raise ReviewError(NOT_A_REVIEWER_MESSAGE)
    now = timezone.now()
    assignment, _ = CaseAssignment.objects.update_or_create(
        case=case,
        defaults={"reviewer": reviewer, "assigned_by": by, "by_rules": by_rules, "assigned_at": now},
    )
    ReviewerProfile.objects.update_or_create(user=reviewer, defaults={"last_assigned_at": now})
    if case.status == Case.Status.SUBMITTED:
        case_status_change(case=case, status=Case.Status.ASSIGNED)
    from review.staff_notifications import case_assigned_notify

    case_assigned_notify(case=case, reviewer=reviewer, at=now)
    return assignment


def reviewer_choose_by_rules(*, case: Case) -> User:
    """The reviewer the rules pick for ``case``.

    Only available reviewers below their maximum of open cases are candidates. Among them, those
    whose specialties include the case's specialty and whose modalities cover the case's studies
    rank first (both matching before one, one before none); then the least loaded; then, between
    equals, the one assigned longest ago (round robin).
    """
    candidates = list(
        User.objects.filter(is_reviewer=True, is_active=True).select_related("reviewer_profile")
    )
    loads = reviewer_loads()
    case_specialty = case.specialty.strip().lower()
    case_modalities = {
        m.strip().upper()
        for value in Study.objects.included().filter(case=case).values_list("modalities", flat=True)
        for m in value.split(",")
        if m.strip()
    }
    ranked = []
    for user in candidates:
        profile = getattr(user, "reviewer_profile", None)
        available = profile.available if profile else True
        maximum = profile.max_open_cases if profile else 10
        load = loads.get(user.pk, 0)
        if not available or load >= maximum:
            continue
        specialty_match = (
            bool(case_specialty) and profile is not None and case_specialty in profile.specialty_list()
        )
        modality_match = (
            bool(case_modalities) and profile is not None and case_modalities <= set(profile.modality_list())
        )
        last = profile.last_assigned_at.timestamp() if profile and profile.last_assigned_at else 0.0
        ranked.append((-(specialty_match + modality_match), load, last, user.pk, user))
    if not ranked:
        raise ReviewError(NO_REVIEWER_MESSAGE)
    ranked.sort(key=lambda row: row[:4])
    return ranked[0][4]


def case_assign_by_rules(*, case: Case, by: User) -> CaseAssignment:
    _assignable(case)
    return case_assign(case=case, reviewer=reviewer_choose_by_rules(case=case), by=by, by_rules=True)


def case_review_start(*, case: Case, reviewer: User) -> Case:
    """The assigned reviewer started working on the case (the "Start review" button or their
    first saved draft): it is now in review and the patient is told. A case already past that
    is left as it is."""
    if case.status == Case.Status.ASSIGNED:
        case_status_change(case=case, status=Case.Status.IN_REVIEW)
    return case


# --- Notes, information requests, declining -----------------------------------------------------


def case_note_add(*, case: Case, author: User, text: str) -> CaseNote:
    if not text.strip():
        raise ReviewError(EMPTY_TEXT_MESSAGE)
    return CaseNote.objects.create(case=case, author=author, text=text.strip())


@transaction.atomic
def case_info_request(*, case: Case, by: User, note: str) -> Case:
    """Ask the patient for more (the email carries ``note``) and reopen their upload step."""
    if not note.strip():
        raise ReviewError(INFO_NOTE_MESSAGE)
    if case.status not in OPEN_STATES or case.status == Case.Status.OPINION_DRAFTED:
        raise ReviewError(NOT_OPEN_MESSAGE)
    CaseNote.objects.create(
        case=case, author=by, text=f"Information requested from the patient: {note.strip()}"
    )
    # The patient's wizard opens again at its images step (intake allows the file steps and the
    # summary while more information is requested); the note shows on their status page.
    case.wizard_step = "images"
    case.status_note = note.strip()
    case.save(update_fields=["wizard_step", "status_note"])
    return case_status_change(case=case, status=Case.Status.INFO_REQUESTED, note=note.strip())


@transaction.atomic
def case_decline(*, case: Case, by: User, reason: str) -> RefundOutcome:
    """Decline the case with a reason the patient reads, and refund them if they paid (the
    refund is asked for in this transaction and made at Stripe after it commits). Returns what
    happens to the money (its ``message`` is for staff)."""
    if not reason.strip():
        raise ReviewError(DECLINE_REASON_MESSAGE)
    if case.status in FINISHED_STATES:
        raise ReviewError(NOT_OPEN_MESSAGE)
    CaseNote.objects.create(case=case, author=by, text=f"Declined: {reason.strip()}")
    case.status_note = reason.strip()
    case.save(update_fields=["status_note"])
    case_status_change(case=case, status=Case.Status.DECLINED, note=reason.strip())
    return case_refund(case=case, reason=reason.strip())


def report_match_set(*, report: Report, study: Study | None, by: User) -> Report:
    """Staff correct which study a report belongs to (``None``: it matches none)."""
    if study is not None and study.case_id != report.case_id:
        raise ReviewError(WRONG_STUDY_MESSAGE)
    return intake_report_match_set(report=report, study=study)


# --- The opinion ------------------------------------------------------------------------------

OPINION_FIELDS = (
    "patient_summary", "question_restated", "findings", "impression", "agreement", "recommendation",
    "comments",
)  # fmt: skip


@transaction.atomic
def opinion_draft_save(*, case: Case, author: User, data: dict[str, str]) -> Opinion:
    """Save the draft (autosave and the explicit button). Refused once signed."""
    opinion = Opinion.objects.select_for_update().filter(case=case).first()
    if opinion is None:
        opinion = Opinion(case=case, author=author, question_restated=case.question)
    if opinion.is_signed:
        raise ReviewError(OPINION_SIGNED_MESSAGE)
    for name in OPINION_FIELDS:
        if name in data:
            setattr(opinion, name, data[name])
    if opinion.agreement not in Opinion.Agreement.values:
        opinion.agreement = ""
    if opinion.recommendation not in Opinion.Recommendation.values:
        opinion.recommendation = ""
    opinion.save()
    case_review_start(case=case, reviewer=author)
    return opinion


def secret_ok(user: User, secret: str) -> bool:
    """The reviewer's password, or a current code of their authenticator app."""
    if secret and user.check_password(secret):
        return True
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    return bool(
        authenticator
        and secret.strip().isascii()
        and secret.strip().isdigit()
        and TOTP(authenticator).validate_code(secret.strip())
    )


def opinion_content_digest(opinion: Opinion) -> str:
    content = {name: getattr(opinion, name) for name in OPINION_FIELDS}
    # Opinions signed before the patient summary existed were hashed without the key: an empty
    # summary leaves it out, so their recorded digests still verify.
    if not content["patient_summary"]:
        del content["patient_summary"]
    content["case"] = str(opinion.case.public_id)
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def opinion_sign(
    *, case: Case, signer: User, secret: str, institution: Institution, recently_authenticated: bool = False
) -> Opinion:
    """Sign the draft after the reviewer proves who they are again; from then on it is frozen,
    its PDF is stored, and the case waits for release.

    ``recently_authenticated``: the session proved the signer's credentials within the last
    few minutes (``accounts.reauthentication.session_recently_authenticated``), which stands
    for the proof when no ``secret`` is sent: someone who has just typed their password and
    code is not asked again.

    The PDF is rendered here (a rendering failure refuses the signature) but written to storage
    only once the signature commits: a rolled-back signature, by this function or by a caller's
    enclosing transaction, leaves no file behind. Should that write fail, the key is already on
    the opinion and ``review.addenda.opinion_pdf_version_ensure`` writes the file again when it
    is first downloaded."""
    opinion = Opinion.objects.select_for_update().filter(case=case).first()
    if opinion is None:
        raise ReviewError(OPINION_INCOMPLETE_MESSAGE)
    if opinion.is_signed:
        raise ReviewError(OPINION_SIGNED_MESSAGE)
    # A secret typed is checked even within the window: a wrong one is never let through.
    if (secret or not recently_authenticated) and not secret_ok(signer, secret):
        raise ReviewError(WRONG_SECRET_MESSAGE if secret else PROOF_NEEDED_MESSAGE)
    if not (
        opinion.findings.strip()
        and opinion.impression.strip()
        and opinion.agreement
        and opinion.recommendation
    ):
        raise ReviewError(OPINION_INCOMPLETE_MESSAGE)
    profile = ReviewerProfile.objects.filter(user=signer).first()
    opinion.signed_at = timezone.now()
    opinion.signed_by = signer
    opinion.signer_name = signer.full_name or signer.email
    opinion.signer_credentials = profile.credentials if profile else ""
    opinion.signer_title = profile.title if profile else ""
    opinion.content_sha256 = opinion_content_digest(opinion)

    from review.pdf import opinion_pdf_render

    pdf = opinion_pdf_render(opinion=opinion, case=case, institution=institution)
    key = f"opinions/{uuid.uuid4().hex}.pdf"
    opinion.pdf_key = key
    opinion.save()
    case_status_change(case=case, status=Case.Status.OPINION_DRAFTED)
    from review.peer_review import peer_review_sample

    peer_review_sample(case=case, opinion=opinion)  # at the institution's rate
    storage = tenant_storage()  # bound to this schema now, not to whichever runs the callback
    # robust: the signature has committed by then; a storage error must not turn it into a 500.
    transaction.on_commit(lambda: storage.save(key, io.BytesIO(pdf), len(pdf)), robust=True)
    return opinion


@transaction.atomic
def opinion_release(*, case: Case, by: User) -> Opinion:
    """Show the signed opinion to the patient (they are emailed)."""
    opinion = Opinion.objects.select_for_update().filter(case=case).first()
    if opinion is None or not opinion.is_signed:
        raise ReviewError(NOT_SIGNED_MESSAGE)
    if opinion.released_at is not None:
        raise ReviewError(ALREADY_RELEASED_MESSAGE)
    from review.peer_review import peer_review_release_refusal

    refusal = peer_review_release_refusal(case=case)  # waiting for, or disagreed by, a peer
    if refusal:
        raise ReviewError(refusal)
    opinion.released_at = timezone.now()
    opinion.save(update_fields=["released_at"])
    case_status_change(case=case, status=Case.Status.RELEASED)
    fhir_push_enqueue(opinion=opinion)
    return opinion


# --- After the opinion -------------------------------------------------------------------------


def follow_up_ask(*, case: Case, user: User, question: str) -> FollowUpQuestion:
    opinion = Opinion.objects.filter(case=case).first()
    if opinion is None or opinion.released_at is None:
        raise ReviewError(NOT_RELEASED_MESSAGE)
    if not question.strip():
        raise ReviewError(EMPTY_TEXT_MESSAGE)
    limit = review_settings_get().follow_up_questions_allowed
    if FollowUpQuestion.objects.filter(case=case).count() >= limit:
        raise ReviewError(FOLLOW_UP_LIMIT_MESSAGE.format(limit=limit))
    with transaction.atomic():
        asked = FollowUpQuestion.objects.create(case=case, asked_by=user, question=question.strip()[:4000])
        from review.staff_notifications import follow_up_asked_notify

        follow_up_asked_notify(case=case, question_id=asked.pk)
    return asked


@transaction.atomic
def follow_up_answer(*, question: FollowUpQuestion, by: User, answer: str) -> FollowUpQuestion:
    """Answer (or correct the answer to) a patient's question; the patient is emailed (through
    the outbox, with this change) that an answer is waiting (the email holds neither the
    question nor the answer: they read it signed in)."""
    if not answer.strip():
        raise ReviewError(EMPTY_TEXT_MESSAGE)
    question.answer = answer.strip()
    question.answered_by = by
    question.answered_at = timezone.now()
    question.answer_emailed_at = None  # each answer is announced once
    question.save(update_fields=["answer", "answered_by", "answered_at", "answer_emailed_at"])
    from review.notifications import follow_up_answer_email_send

    follow_up_answer_email_send(question_id=question.pk)  # to the outbox, in this transaction
    return question


def outcome_record(*, case: Case, by: User, kind: str, note: str) -> Outcome:
    if kind not in Outcome.Kind.values:
        raise ReviewError("Choose what happened next.")
    return Outcome.objects.create(case=case, kind=kind, note=note.strip()[:300], recorded_by=by)


def case_close(*, case: Case, by: User) -> Case:
    if case.status != Case.Status.RELEASED:
        raise ReviewError("Only a case whose opinion was released can be closed.")
    return case_status_change(case=case, status=Case.Status.CLOSED)
