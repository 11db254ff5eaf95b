"""The case workspace: what came in (studies, reports, previews) and the staff's work on it
(assignment, notes, requests to the patient, decline, close, outcomes, report matching)."""

# long module: the case page and each short POST action staff take on it (assign,
# note, request information, decline, close, outcome, match) read best next to the page they return to.

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from accounts.reauthentication import session_recently_authenticated
from audit.services import audit_record
from imaging import exclusion
from imaging.ingest.pdf_safety import report_original_key
from imaging.ingest.selectors import case_problems
from imaging.models import Report, Series, Study, Upload
from imaging.pacs.destinations import destinations_active
from imaging.pacs.sends import pacs_sends_of_case
from intake.models import Case
from review import services
from review.access import is_coordinator
from review.case_page import assignable_reviewers, case_page_context, case_page_read
from review.decorators import case_endpoint
from review.forms import (
    AddendumForm,
    AnswerForm,
    AssignForm,
    DeclineForm,
    InfoRequestForm,
    MatchForm,
    NoteForm,
    OpinionForm,
    OutcomeForm,
    PeerReviewAnswerForm,
    PeerReviewOverrideForm,
    SignForm,
)
from review.opinion_templates import opinion_templates_for
from review.peer_review import peer_review_release_refusal_of
from review.selectors import case_due_at, turnaround_business_days_get
from review.views.common import back_to_case, queue_filters_query, request_user, run_step
from storage.base import ObjectNotFound
from storage.tenant import tenant_storage

REPORT_UNAVAILABLE_MESSAGE = "This report file is not available."
REPORT_ORIGINAL_UNAVAILABLE_MESSAGE = "The file as the patient sent it was not kept for this report."
PREVIEW_UNAVAILABLE_MESSAGE = "No preview for this series yet."
# Read with the case in one query: the page shows each of them.
CASE_PAGE_RELATED = ("assignment__reviewer", "payment", "opinion")


@require_GET
@case_endpoint(action="case.view", related=CASE_PAGE_RELATED)
def case_workspace(request: HttpRequest, case: Case) -> HttpResponse:
    user = request_user(request)
    assignment = getattr(case, "assignment", None)
    # Reading a case changes nothing (no GET does): the review starts with the reviewer's
    # "Start review" button or their first saved draft.
    is_assigned_reviewer = bool(assignment and assignment.reviewer_id == user.pk and user.is_reviewer)
    coordinator = is_coordinator(user)
    page = case_page_read(case=case, with_outcomes=coordinator)
    opinion = page.opinion
    can_edit_opinion = is_assigned_reviewer and not (opinion and opinion.is_signed)
    opinion_initial = (
        {name: getattr(opinion, name) for name in services.OPINION_FIELDS}
        if opinion
        else {"question_restated": case.question}
    )
    signed_unreleased = bool(opinion and opinion.is_signed and opinion.released_at is None)
    can_request_peer = signed_unreleased and (coordinator or is_assigned_reviewer)
    release_refusal = peer_review_release_refusal_of(page.peer_reviews) if signed_unreleased else ""
    return render(
        request,
        "review/case.html",
        {
            "case": case,
            "assignment": assignment,
            "due_at": case_due_at(case=case, turnaround_business_days=turnaround_business_days_get()),
            **case_page_context(page),
            # Only coordinators see the assignment form.
            "reviewers": assignable_reviewers() if coordinator else [],
            "problems": case_problems(case=case),
            "pacs_destinations": destinations_active() if user.is_institution_staff else [],
            "pacs_sends": pacs_sends_of_case(case),
            "is_coordinator": coordinator,
            "is_assigned_reviewer": is_assigned_reviewer,
            "can_edit_opinion": can_edit_opinion,
            "opinion_templates": opinion_templates_for(user) if can_edit_opinion else [],
            "can_start_review": is_assigned_reviewer and case.status == Case.Status.ASSIGNED,
            "can_release": signed_unreleased
            and (coordinator or is_assigned_reviewer)
            and not release_refusal,
            "release_refusal": release_refusal,
            "can_request_peer": can_request_peer,
            "peer_choices": [r for r in assignable_reviewers() if opinion and r.pk != opinion.signed_by_id]
            if can_request_peer
            else [],
            "my_peer_review": next(
                (
                    r
                    for r in reversed(page.peer_reviews)
                    if r.reviewer_id == user.pk and r.overridden_at is None and signed_unreleased
                ),
                None,
            ),
            "peer_answer_form": PeerReviewAnswerForm(),
            "peer_override_form": PeerReviewOverrideForm(),
            "is_admin": user.is_institution_admin,
            "is_open": case.status not in services.FINISHED_STATES,
            "opinion_form": OpinionForm(initial=opinion_initial),
            "sign_form": SignForm(),
            "addendum_form": AddendumForm(),
            # Signed in (password and code) moments ago: signing does not ask for them again.
            "sign_needs_secret": not session_recently_authenticated(request, user),
            "note_form": NoteForm(),
            "info_form": InfoRequestForm(),
            "decline_form": DeclineForm(),
            "outcome_form": OutcomeForm(),
            "answer_form": AnswerForm(),
            "pdfjs_worker": settings.STATIC_URL + "dist/pdfworker.js",
        },
    )


def _assign_back(request: HttpRequest, case: Case) -> HttpResponseRedirect:
    # The queue's per-row form comes back to the queue, with its filters (never a search term).
    if request.POST.get("back") == "queue":
        return redirect(reverse("review:queue") + queue_filters_query(request.POST.get("filters", "")))
    return back_to_case(case, "assignment")


@require_POST
@case_endpoint(action="case.assign", role="coordinator", audit_success=False)
def case_assign(request: HttpRequest, case: Case) -> HttpResponse:
    """Assign from the case page or from a row of the queue (same service, same audit)."""
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, services.NOT_A_REVIEWER_MESSAGE)
        return _assign_back(request, case)
    choice = form.cleaned_data["reviewer"]
    try:
        if choice == "rules":
            assignment = services.case_assign_by_rules(case=case, by=request_user(request))
        else:
            reviewer = User.objects.filter(
                pk=int(choice) if choice.isascii() and choice.isdigit() else 0
            ).first()
            if reviewer is None:
                raise services.ReviewError(services.NOT_A_REVIEWER_MESSAGE)
            assignment = services.case_assign(case=case, reviewer=reviewer, by=request_user(request))
    except services.ReviewError as error:
        messages.error(request, f"{case.number}: {error}" if case.number else str(error))
        return _assign_back(request, case)
    audit_record(
        request=request,
        action="case.assign",
        case=case,
        object_ref=str(case.public_id),
        detail={"reviewer_id": assignment.reviewer_id, "by_rules": assignment.by_rules},
    )
    messages.success(request, f"{case.number or 'The case'} assigned to {assignment.reviewer}.")
    return _assign_back(request, case)


@require_POST
@case_endpoint(action="case.review_start", role="reviewer", audit_success=True)
def case_review_start(request: HttpRequest, case: Case) -> HttpResponse:
    """The assigned reviewer starts the review: the case is "in review" and the patient told."""
    user = request_user(request)  # the assigned reviewer (role="reviewer")
    return run_step(
        request,
        case,
        lambda: services.case_review_start(case=case, reviewer=user),
        success="Review started: the patient has been told a physician is reviewing their case.",
        anchor="opinion",
    )


@require_POST
@case_endpoint(action="case.note", audit_success=False)
def case_note(request: HttpRequest, case: Case) -> HttpResponse:
    form = NoteForm(request.POST)
    text = form.cleaned_data["text"] if form.is_valid() else ""
    return run_step(
        request,
        case,
        lambda: services.case_note_add(case=case, author=request_user(request), text=text),
        success="Note added.",
        anchor="notes",
    )


@require_POST
@case_endpoint(action="case.request_info", audit_success=True)
def case_request_info(request: HttpRequest, case: Case) -> HttpResponse:
    form = InfoRequestForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    return run_step(
        request,
        case,
        lambda: services.case_info_request(case=case, by=request_user(request), note=note),
        success="The patient has been asked for more information by email.",
    )


@require_POST
@case_endpoint(action="case.decline", role="coordinator", audit_success=True)
def case_decline(request: HttpRequest, case: Case) -> HttpResponse:
    form = DeclineForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        money = services.case_decline(case=case, by=request_user(request), reason=reason)
    except services.ReviewError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The case was declined and the patient told why.")
        # A refund that staff must make themselves is a warning, not news.
        (messages.warning if money.staff_must_act else messages.info)(request, money.message)
    return back_to_case(case)


@require_POST
@case_endpoint(action="case.close", role="coordinator", audit_success=True)
def case_close(request: HttpRequest, case: Case) -> HttpResponse:
    return run_step(
        request,
        case,
        lambda: services.case_close(case=case, by=request_user(request)),
        success="Case closed.",
    )


@require_POST
@case_endpoint(action="case.outcome", role="coordinator", audit_success=True)
def case_outcome(request: HttpRequest, case: Case) -> HttpResponse:
    form = OutcomeForm(request.POST)
    kind = form.cleaned_data["kind"] if form.is_valid() else ""
    note = form.cleaned_data.get("note", "") if form.is_valid() else ""
    return run_step(
        request,
        case,
        lambda: services.outcome_record(case=case, by=request_user(request), kind=kind, note=note),
        success="Outcome recorded.",
        anchor="outcomes",
    )


@require_POST
@case_endpoint(action="report.match", audit_success=False)
def report_match(request: HttpRequest, case: Case, report_id: uuid.UUID) -> HttpResponse:
    report = Report.objects.filter(case=case, public_id=report_id).first()
    if report is None:
        raise Http404
    form = MatchForm(request.POST)
    study_id = form.cleaned_data["study"] if form.is_valid() else ""
    study = (
        Study.objects.filter(case=case, pk=int(study_id)).first()
        if study_id.isascii() and study_id.isdigit()
        else None
    )
    if study_id and study is None:
        messages.error(request, services.WRONG_STUDY_MESSAGE)
        return back_to_case(case, "reports")
    before = report.study_id
    services.report_match_set(report=report, study=study, by=request_user(request))
    audit_record(
        request=request,
        action="report.match",
        case=case,
        object_ref=str(report.public_id),
        detail={"from_study": before, "to_study": study.pk if study else None},
    )
    messages.success(request, "Report match updated.")
    return back_to_case(case, "reports")


def _report_response(reader: Any, *, content_type: str, inline: bool, filename: str) -> HttpResponseBase:
    response = FileResponse(reader, content_type=content_type, as_attachment=not inline, filename=filename)
    # Opened directly, the file is a unique origin with scripts off; staff read PDFs through
    # pdf.js in the workspace (scripting off), and a PDF opened by URL is a download, never
    # the browser's own PDF viewer (which runs a document's scripts even under this policy).
    response["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


@require_GET
@case_endpoint(action="report.view", audit_success=False)
def report_file(request: HttpRequest, case: Case, report_id: uuid.UUID) -> HttpResponseBase:
    """The report as staff read it: a PDF rewritten at ingest without active content (for the
    in-page pdf.js viewer, or downloaded), a photo re-encoded without its metadata."""
    report = Report.objects.filter(case=case, public_id=report_id).first()
    if report is None:
        raise Http404(REPORT_UNAVAILABLE_MESSAGE)
    try:
        reader = tenant_storage().open(report.storage_key)
    except (ObjectNotFound, ValueError):
        raise Http404(REPORT_UNAVAILABLE_MESSAGE) from None
    audit_record(request=request, action="report.view", case=case, object_ref=str(report.public_id))
    is_pdf = report.content_type == "application/pdf"
    is_image = report.content_type.startswith("image/")
    return _report_response(
        reader,
        content_type=report.content_type if is_pdf or is_image else "application/octet-stream",
        inline=is_image,
        filename="report.pdf" if is_pdf else "report",
    )


@require_GET
@case_endpoint(action="report.original", audit_success=False)
def report_original(request: HttpRequest, case: Case, report_id: uuid.UUID) -> HttpResponseBase:
    """The PDF exactly as the patient sent it, active content included: a download only."""
    report = Report.objects.filter(case=case, public_id=report_id).first()
    if report is None:
        raise Http404(REPORT_UNAVAILABLE_MESSAGE)
    try:
        reader = tenant_storage().open(report_original_key(report.storage_key))
    except (ObjectNotFound, ValueError):
        raise Http404(REPORT_ORIGINAL_UNAVAILABLE_MESSAGE) from None
    audit_record(request=request, action="report.original", case=case, object_ref=str(report.public_id))
    return _report_response(
        reader, content_type="application/octet-stream", inline=False, filename="report-as-sent.pdf"
    )


@require_GET
@case_endpoint(action="series.preview", audit_success=False)
def series_preview(request: HttpRequest, case: Case, series_id: int) -> HttpResponseBase:
    series = Series.objects.filter(study__case=case, pk=series_id).first()
    if series is None or not series.preview_key:
        raise Http404(PREVIEW_UNAVAILABLE_MESSAGE)
    try:
        reader = tenant_storage().open(series.preview_key)
    except (ObjectNotFound, ValueError):
        raise Http404(PREVIEW_UNAVAILABLE_MESSAGE) from None
    audit_record(request=request, action="series.preview", case=case, object_ref=f"series:{series.pk}")
    content_type = "image/png" if series.preview_key.endswith(".png") else "image/jpeg"
    if series.preview_key.endswith(".webp"):
        content_type = "image/webp"
    response = FileResponse(reader, content_type=content_type)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


STUDY_EXCLUDED_MESSAGE = "The study is excluded from the case: kept, and listed under excluded studies."
STUDY_INCLUDED_MESSAGE = "The study is part of the case again."


@require_POST
@case_endpoint(action="study.exclude", audit_success=False)
def study_exclude(request: HttpRequest, case: Case, study_id: int) -> HttpResponse:
    """Staff leave a study out of the case (e.g. another patient's images): kept, audited."""
    study = Study.objects.filter(case=case, pk=study_id).first()
    if study is None:
        raise Http404
    exclusion.study_exclude(study=study, by=request_user(request), reason=Study.Exclusion.STAFF)
    audit_record(request=request, action="study.exclude", case=case, object_ref=f"study:{study.pk}")
    messages.success(request, STUDY_EXCLUDED_MESSAGE)
    return back_to_case(case, "imaging")


@require_POST
@case_endpoint(action="study.include", audit_success=False)
def study_include(request: HttpRequest, case: Case, study_id: int) -> HttpResponse:
    study = Study.objects.filter(case=case, pk=study_id).first()
    if study is None:
        raise Http404
    exclusion.study_include(study=study, by=request_user(request))
    audit_record(request=request, action="study.include", case=case, object_ref=f"study:{study.pk}")
    messages.success(request, STUDY_INCLUDED_MESSAGE)
    return back_to_case(case, "imaging")


UPLOAD_UNAVAILABLE_MESSAGE = "The bytes of this upload are not available."


@require_GET
@case_endpoint(action="upload.original", audit_success=False)
def upload_original(request: HttpRequest, case: Case, upload_id: uuid.UUID) -> HttpResponseBase:
    """The bytes a patient sent in an upload that could not be processed, as received, to see
    what they sent (audited). Always a download (octet-stream): never shown in the browser."""
    upload = Upload.objects.filter(case=case, public_id=upload_id, status=Upload.Status.FAILED).first()
    if upload is None or not upload.storage_key:
        raise Http404(UPLOAD_UNAVAILABLE_MESSAGE)
    try:
        reader = tenant_storage().open(upload.storage_key)
    except (ObjectNotFound, ValueError):
        raise Http404(UPLOAD_UNAVAILABLE_MESSAGE) from None
    audit_record(request=request, action="upload.original", case=case, object_ref=str(upload.public_id))
    response = FileResponse(
        reader, content_type="application/octet-stream", as_attachment=True, filename="upload.bin"
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
