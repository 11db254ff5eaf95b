"""The staff workspace of an institution, and the patient's opinion page.

Views parse input, fetch through an access helper (``review.decorators.case_endpoint``, which
audits every attempt), call one service, and render or redirect.
"""

from __future__ import annotations

import csv
import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from audit.services import audit_record
from imaging.ingest.selectors import case_problems
from imaging.models import Report, Series, Study
from intake.models import Case
from payments.services import REFUND_NOTHING_PAID
from review import services
from review.access import is_coordinator
from review.decorators import admin_only, case_endpoint, json_or_redirect, staff_page
from review.forms import (
    AnswerForm,
    AssignForm,
    AuditFilterForm,
    DeclineForm,
    FollowUpForm,
    InfoRequestForm,
    MatchForm,
    NoteForm,
    OpinionForm,
    OutcomeForm,
    ReviewSettingsForm,
    SearchForm,
    SignForm,
    StaffMemberForm,
)
from review.models import CaseNote, FollowUpQuestion, Opinion, Outcome, ReviewerProfile
from review.selectors import (
    QUEUE_STATES,
    QueueFilters,
    audit_case_numbers,
    audit_events,
    case_due_at,
    case_queue,
    dashboard_build,
    review_settings_get,
    roster_list,
)
from storage.base import ObjectNotFound
from storage.tenant import tenant_storage

SEARCH_SESSION_KEY = "review_queue_search"
VIEWER_TEMPLATE = "imaging/viewer/viewer.html"
REPORT_UNAVAILABLE_MESSAGE = "This report file is not available."
PREVIEW_UNAVAILABLE_MESSAGE = "No preview for this series yet."
OPINION_NOT_RELEASED_MESSAGE = "Your second opinion is not ready yet. We will email you when it is."


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


# --- Queue --------------------------------------------------------------------------------------


@require_GET
@staff_page(action="queue.view")
def queue(request: HttpRequest) -> HttpResponse:
    """The queue. Filters without patient data (state, reviewer, due, urgency) are GET
    parameters, so a filtered view can be bookmarked; the search term (which may be a patient's
    name) is posted to ``queue_search`` and kept in the session, so it never appears in a URL,
    the browser history or an access log."""
    search = str(request.session.get(SEARCH_SESSION_KEY, ""))
    filters = QueueFilters.from_params(request.GET, search=search)
    page_number = request.GET.get("page", "1")
    result = case_queue(
        user=_user(request),
        filters=filters,
        page_number=int(page_number) if page_number.isascii() and page_number.isdigit() else 1,
    )
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "review/queue.html",
        {
            "queue": result,
            "states": [(value, label, result.state_counts[value]) for value, label in QUEUE_STATES],
            "search_form": SearchForm(initial={"q": search}),
            "filter_query": params.urlencode(),
            "can_assign": is_coordinator(request.user),
            "assignable_states": services.ASSIGNABLE_STATES,
        },
    )


@require_POST
@staff_page(action="queue.search")
def queue_search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.POST)
    term = form.cleaned_data["q"].strip() if form.is_valid() and "clear" not in request.POST else ""
    if term:
        request.session[SEARCH_SESSION_KEY] = term
    else:
        request.session.pop(SEARCH_SESSION_KEY, None)
    return redirect(reverse("review:queue") + _safe_query(request.POST.get("filters", "")))


def _safe_query(query: str) -> str:
    # Only the queue's own filter parameters are carried back (never the search term).
    from django.http import QueryDict

    allowed = {"state", "reviewer", "due", "urgency"}
    params = QueryDict(query, mutable=True)
    for key in list(params.keys()):
        if key not in allowed:
            del params[key]
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else ""


# --- Case workspace -----------------------------------------------------------------------------


def _viewer_template() -> str | None:
    # The viewer is built separately; until its template exists the page shows the previews only.
    try:
        get_template(VIEWER_TEMPLATE)
    except TemplateDoesNotExist:
        return None
    return VIEWER_TEMPLATE


@require_GET
@case_endpoint(action="case.view")
def case_workspace(request: HttpRequest, case: Case) -> HttpResponse:
    user = _user(request)
    assignment = getattr(case, "assignment", None)
    is_assigned_reviewer = bool(assignment and assignment.reviewer_id == user.pk and user.is_reviewer)
    if is_assigned_reviewer:
        services.case_review_start(case=case, reviewer=user)
    opinion = Opinion.objects.filter(case=case).select_related("author").first()
    studies = list(
        Study.objects.filter(case=case).prefetch_related(
            Prefetch("series", queryset=Series.objects.order_by("series_number", "id"))
        )
    )
    reports = list(Report.objects.filter(case=case).select_related("study").order_by("created", "id"))
    settings_row = review_settings_get()
    opinion_initial = (
        {name: getattr(opinion, name) for name in services.OPINION_FIELDS}
        if opinion
        else {"question_restated": case.question}
    )
    return render(
        request,
        "review/case.html",
        {
            "case": case,
            "assignment": assignment,
            "due_at": case_due_at(case=case, turnaround_business_days=settings_row.turnaround_business_days),
            "studies": studies,
            "reports": reports,
            "notes": CaseNote.objects.filter(case=case).select_related("author"),
            "opinion": opinion,
            "follow_ups": FollowUpQuestion.objects.filter(case=case).select_related(
                "asked_by", "answered_by"
            ),
            "outcomes": Outcome.objects.filter(case=case).select_related("recorded_by"),
            "reviewers": User.objects.filter(is_reviewer=True, is_active=True).order_by("full_name", "email"),
            "viewer_template": _viewer_template(),
            "problems": case_problems(case=case),
            "is_coordinator": is_coordinator(user),
            "is_assigned_reviewer": is_assigned_reviewer,
            "can_edit_opinion": is_assigned_reviewer and not (opinion and opinion.is_signed),
            "can_release": bool(
                opinion
                and opinion.is_signed
                and opinion.released_at is None
                and (is_coordinator(user) or is_assigned_reviewer)
            ),
            "is_open": case.status not in services.FINISHED_STATES,
            "opinion_form": OpinionForm(initial=opinion_initial),
            "sign_form": SignForm(),
            "note_form": NoteForm(),
            "info_form": InfoRequestForm(),
            "decline_form": DeclineForm(),
            "outcome_form": OutcomeForm(),
            "answer_form": AnswerForm(),
            "pdfjs_worker": settings.STATIC_URL + "dist/pdfworker.js",
        },
    )


def _back(case: Case, anchor: str = "") -> HttpResponseRedirect:
    return redirect(reverse("review:case", args=[case.public_id]) + (f"#{anchor}" if anchor else ""))


def _run(
    request: HttpRequest, case: Case, step: Any, *, success: str, anchor: str = ""
) -> HttpResponseRedirect:
    """Run a service step; show its refusal message, or ``success``."""
    try:
        step()
    except services.ReviewError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success)
    return _back(case, anchor)


def _assign_back(request: HttpRequest, case: Case) -> HttpResponseRedirect:
    # The queue's per-row form comes back to the queue, with its filters (never a search term).
    if request.POST.get("back") == "queue":
        return redirect(reverse("review:queue") + _safe_query(request.POST.get("filters", "")))
    return _back(case, "assignment")


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
            assignment = services.case_assign_by_rules(case=case, by=_user(request))
        else:
            reviewer = User.objects.filter(
                pk=int(choice) if choice.isascii() and choice.isdigit() else 0
            ).first()
            if reviewer is None:
                raise services.ReviewError(services.NOT_A_REVIEWER_MESSAGE)
            assignment = services.case_assign(case=case, reviewer=reviewer, by=_user(request))
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
@case_endpoint(action="case.note", audit_success=False)
def case_note(request: HttpRequest, case: Case) -> HttpResponse:
    form = NoteForm(request.POST)
    text = form.cleaned_data["text"] if form.is_valid() else ""
    return _run(
        request,
        case,
        lambda: services.case_note_add(case=case, author=_user(request), text=text),
        success="Note added.",
        anchor="notes",
    )


@require_POST
@case_endpoint(action="case.request_info", audit_success=True)
def case_request_info(request: HttpRequest, case: Case) -> HttpResponse:
    form = InfoRequestForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    return _run(
        request,
        case,
        lambda: services.case_info_request(case=case, by=_user(request), note=note),
        success="The patient has been asked for more information by email.",
    )


@require_POST
@case_endpoint(action="case.decline", role="coordinator", audit_success=True)
def case_decline(request: HttpRequest, case: Case) -> HttpResponse:
    form = DeclineForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        money = services.case_decline(case=case, by=_user(request), reason=reason)
    except services.ReviewError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The case was declined and the patient told why.")
        # A refund that was due and did not happen is staff's to finish: a warning, not news.
        refund_failed = not money.refunded and money.message != REFUND_NOTHING_PAID
        (messages.warning if refund_failed else messages.info)(request, money.message)
    return _back(case)


@require_POST
@case_endpoint(action="case.close", role="coordinator", audit_success=True)
def case_close(request: HttpRequest, case: Case) -> HttpResponse:
    return _run(
        request, case, lambda: services.case_close(case=case, by=_user(request)), success="Case closed."
    )


@require_POST
@case_endpoint(action="case.outcome", role="coordinator", audit_success=True)
def case_outcome(request: HttpRequest, case: Case) -> HttpResponse:
    form = OutcomeForm(request.POST)
    kind = form.cleaned_data["kind"] if form.is_valid() else ""
    note = form.cleaned_data.get("note", "") if form.is_valid() else ""
    return _run(
        request,
        case,
        lambda: services.outcome_record(case=case, by=_user(request), kind=kind, note=note),
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
        return _back(case, "reports")
    before = report.study_id
    services.report_match_set(report=report, study=study, by=_user(request))
    audit_record(
        request=request,
        action="report.match",
        case=case,
        object_ref=str(report.public_id),
        detail={"from_study": before, "to_study": study.pk if study else None},
    )
    messages.success(request, "Report match updated.")
    return _back(case, "reports")


@require_GET
@case_endpoint(action="report.view", audit_success=False)
def report_file(request: HttpRequest, case: Case, report_id: uuid.UUID) -> HttpResponseBase:
    """The report's bytes for the in-page pdf.js viewer (and for a new tab).

    ``Content-Security-Policy: sandbox`` makes a browser that opens it directly treat it as a
    unique origin with scripts off: a hostile PDF (or a file pretending to be one) cannot act in
    the staff member's session. The workspace renders it with pdf.js into a canvas instead of
    the browser's plug-in.
    """
    report = Report.objects.filter(case=case, public_id=report_id).first()
    if report is None:
        raise Http404(REPORT_UNAVAILABLE_MESSAGE)
    try:
        reader = tenant_storage().open(report.storage_key)
    except (ObjectNotFound, ValueError):
        raise Http404(REPORT_UNAVAILABLE_MESSAGE) from None
    audit_record(request=request, action="report.view", case=case, object_ref=str(report.public_id))
    is_pdf = report.content_type == "application/pdf"
    response = FileResponse(
        reader,
        content_type=report.content_type
        if is_pdf or report.content_type.startswith("image/")
        else "application/octet-stream",
        as_attachment=not is_pdf and not report.content_type.startswith("image/"),
        filename="report.pdf" if is_pdf else "report",
    )
    response["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


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


# --- The opinion --------------------------------------------------------------------------------


@require_POST
@case_endpoint(action="opinion.draft", role="reviewer", audit_success=False)
def opinion_draft(request: HttpRequest, case: Case) -> HttpResponse:
    """Autosave (fetch, answers JSON) and the "Save draft" button (redirects back)."""
    form = OpinionForm(request.POST)
    wants_json = json_or_redirect(request)
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"saved": False, "errors": form.errors}, status=400)
        messages.error(
            request, "The draft could not be saved: " + "; ".join(str(e) for e in form.errors.values())
        )
        return _back(case, "opinion")
    submitted = {name: form.cleaned_data[name] for name in services.OPINION_FIELDS if name in request.POST}
    try:
        opinion = services.opinion_draft_save(case=case, author=_user(request), data=submitted)
    except services.ReviewError as error:
        # Refused edits of a signed opinion are audited as such.
        audit_record(
            request=request,
            action="opinion.edit_signed",
            case=case,
            allowed=False,
            detail={"reason": "signed"},
        )
        if wants_json:
            return JsonResponse({"saved": False, "error": str(error)}, status=409)
        messages.error(request, str(error))
        return _back(case, "opinion")
    if wants_json:
        return JsonResponse(
            {"saved": True, "updated": timezone.localtime(opinion.updated).strftime("%H:%M:%S")}
        )
    messages.success(request, "Draft saved.")
    return _back(case, "opinion")


@require_POST
@case_endpoint(action="opinion.sign", role="reviewer", audit_success=False)
def opinion_sign(request: HttpRequest, case: Case) -> HttpResponse:
    form = SignForm(request.POST)
    secret = form.cleaned_data["secret"] if form.is_valid() else ""
    # Signing asks for the password or a TOTP code again: limited like a sign-in, so a stolen
    # session cannot guess its way to a signature.
    if not attempt_allowed(request, action="opinion_sign", user=_user(request)):
        audit_record(
            request=request,
            action="opinion.sign",
            case=case,
            allowed=False,
            detail={"reason": "rate_limited"},
        )
        messages.error(request, TOO_MANY_ATTEMPTS)
        return _back(case, "opinion")
    try:
        opinion = services.opinion_sign(
            case=case,
            signer=_user(request),
            secret=secret,
            institution=request.tenant,  # type: ignore[attr-defined]
        )
    except services.ReviewError as error:
        audit_record(
            request=request, action="opinion.sign", case=case, allowed=False, detail={"reason": "refused"}
        )
        messages.error(request, str(error))
        return _back(case, "opinion")
    audit_record(
        request=request,
        action="opinion.sign",
        case=case,
        object_ref=str(opinion.public_id),
        detail={"sha256": opinion.content_sha256},
    )
    messages.success(request, "Opinion signed. It can no longer be changed.")
    return _back(case, "opinion")


@require_POST
@case_endpoint(action="opinion.release", audit_success=False)
def opinion_release(request: HttpRequest, case: Case) -> HttpResponse:
    user = _user(request)
    assignment = getattr(case, "assignment", None)
    if not (is_coordinator(user) or (assignment and assignment.reviewer_id == user.pk)):
        audit_record(
            request=request,
            action="opinion.release",
            case=case,
            allowed=False,
            detail={"reason": "forbidden"},
        )
        raise PermissionDenied
    try:
        opinion = services.opinion_release(case=case, by=user)
    except services.ReviewError as error:
        messages.error(request, str(error))
        return _back(case, "opinion")
    audit_record(request=request, action="opinion.release", case=case, object_ref=str(opinion.public_id))
    messages.success(request, "The opinion was released; the patient has been emailed.")
    return _back(case, "opinion")


def _opinion_pdf_redirect(request: HttpRequest, case: Case, opinion: Opinion | None) -> HttpResponseBase:
    """A short-lived signed link to the stored PDF (the storage serves it, S3 or ours)."""
    if opinion is None or not opinion.pdf_key:
        raise Http404
    key = services.opinion_pdf_ensure(opinion=opinion, institution=request.tenant)  # type: ignore[attr-defined]
    url = tenant_storage().signed_url(
        key,
        expires=dt.timedelta(seconds=settings.SIGNED_URL_SECONDS),
        filename=f"second-opinion-{case.number or 'case'}.pdf",
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
@case_endpoint(action="opinion.download")
def opinion_pdf(request: HttpRequest, case: Case) -> HttpResponseBase:
    return _opinion_pdf_redirect(request, case, Opinion.objects.filter(case=case).first())


@require_POST
@case_endpoint(action="followup.answer", audit_success=True)
def follow_up_answer(request: HttpRequest, case: Case, question_id: int) -> HttpResponse:
    question = FollowUpQuestion.objects.filter(case=case, pk=question_id).first()
    if question is None:
        raise Http404
    form = AnswerForm(request.POST)
    answer = form.cleaned_data["answer"] if form.is_valid() else ""
    return _run(
        request,
        case,
        lambda: services.follow_up_answer(question=question, by=_user(request), answer=answer),
        success="Answer sent.",
        anchor="follow-ups",
    )


# --- The patient's side ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@case_endpoint(action="opinion.view", role="patient", audit_success=False)
def patient_opinion(request: HttpRequest, case: Case) -> HttpResponse:
    opinion = Opinion.objects.filter(case=case, released_at__isnull=False).first()
    audit_record(
        request=request,
        action="opinion.view" if request.method == "GET" else "followup.ask",
        case=case,
        object_ref=str(case.public_id),
    )
    form = FollowUpForm()
    if request.method == "POST":
        form = FollowUpForm(request.POST)
        if form.is_valid():
            try:
                services.follow_up_ask(case=case, user=_user(request), question=form.cleaned_data["question"])
            except services.ReviewError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, "Your question was sent. We will email you when it is answered.")
                return redirect("review:patient_opinion", public_id=case.public_id)
    follow_ups = list(FollowUpQuestion.objects.filter(case=case))
    allowed = review_settings_get().follow_up_questions_allowed
    return render(
        request,
        "review/patient_opinion.html",
        {
            "case": case,
            "opinion": opinion,
            "not_ready_message": OPINION_NOT_RELEASED_MESSAGE,
            "follow_ups": follow_ups,
            "questions_left": max(0, allowed - len(follow_ups)),
            "form": form,
        },
    )


@require_GET
@case_endpoint(action="opinion.download", role="patient")
def patient_opinion_pdf(request: HttpRequest, case: Case) -> HttpResponseBase:
    return _opinion_pdf_redirect(
        request, case, Opinion.objects.filter(case=case, released_at__isnull=False).first()
    )


# --- Roster and settings -------------------------------------------------------------------------


@require_GET
@staff_page(action="roster.view", need=admin_only)
def roster(request: HttpRequest) -> HttpResponse:
    settings_row = review_settings_get()
    rows = roster_list()
    forms = []
    for row in rows:
        profile = row.profile or ReviewerProfile(user=row.user)
        member_form = StaffMemberForm(
            prefix=f"u{row.user.pk}",
            initial={
                "is_institution_admin": row.user.is_institution_admin,
                "is_coordinator": row.user.is_coordinator,
                "is_reviewer": row.user.is_reviewer,
                "credentials": profile.credentials,
                "specialties": profile.specialties.replace(",", ", "),
                "modalities": profile.modalities.replace(",", ", "),
                "available": profile.available,
                "max_open_cases": profile.max_open_cases,
            },
        )
        # One <form> per row lives in a cell; the inputs in other cells join it by id.
        for field in member_form.fields.values():
            field.widget.attrs["form"] = f"member-{row.user.pk}"
        forms.append((row, member_form))
    settings_form = ReviewSettingsForm(
        initial={
            "turnaround_business_days": settings_row.turnaround_business_days,
            "soon_due_business_days": settings_row.soon_due_business_days,
            "session_idle_minutes": settings_row.session_idle_minutes,
            "reviewers_see_only_assigned": settings_row.reviewers_see_only_assigned,
            "follow_up_questions_allowed": settings_row.follow_up_questions_allowed,
        }
    )
    return render(request, "review/roster.html", {"rows": forms, "settings_form": settings_form})


@require_POST
@staff_page(action="roster.update", need=admin_only)
def roster_member(request: HttpRequest, user_id: int) -> HttpResponse:
    # Only accounts that joined as staff are on the roster: a patient's id is not found here.
    member = User.objects.filter(pk=user_id, is_invited_staff=True).first()
    if member is None:
        raise Http404
    form = StaffMemberForm(request.POST, prefix=f"u{member.pk}")
    if not form.is_valid():
        messages.error(
            request,
            "Please correct the roster entry: "
            + "; ".join(
                f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()
            ),
        )
        return redirect("review:roster")
    if member.pk == _user(request).pk and not form.cleaned_data["is_institution_admin"]:
        messages.error(request, "You cannot remove your own administrator role.")
        return redirect("review:roster")
    services.staff_member_update(user=member, by=_user(request), **form.cleaned_data)
    audit_record(request=request, action="roster.update", object_ref=f"user:{member.pk}")
    messages.success(request, f"Saved {member}.")
    return redirect("review:roster")


@require_POST
@staff_page(action="settings.update", need=admin_only)
def review_settings(request: HttpRequest) -> HttpResponse:
    form = ReviewSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Please correct the settings: "
            + "; ".join(
                f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()
            ),
        )
        return redirect("review:roster")
    services.review_settings_update(**form.cleaned_data)
    audit_record(request=request, action="settings.update")
    messages.success(request, "Review settings saved.")
    return redirect("review:roster")


# --- Dashboard ----------------------------------------------------------------------------------


def _coordinators_and_admins(user: User) -> bool:
    return is_coordinator(user)


@require_GET
@staff_page(action="dashboard.view", need=_coordinators_and_admins)
def dashboard(request: HttpRequest) -> HttpResponse:
    board = dashboard_build()
    peak = max([n for _, n in board.weeks] + [1])
    bars = [
        {
            "x": i * 44 + 30,
            "height": round(n / peak * 140),
            "y": 160 - round(n / peak * 140),
            "n": n,
            "week": week,
        }
        for i, (week, n) in enumerate(board.weeks)
    ]
    funnel_peak = max([n for _, n in board.funnel] + [1])
    funnel = [
        {"label": label, "n": n, "width": max(2, round(n / funnel_peak * 360)), "y": i * 34}
        for i, (label, n) in enumerate(board.funnel)
    ]
    return render(
        request,
        "review/dashboard.html",
        {
            "board": board,
            "bars": bars,
            "funnel": funnel,
            "surgeries_this_month": board.month_outcomes.get(Outcome.Kind.SURGERY_SCHEDULED.label, 0),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(filename: str, header: list[str], rows: Any) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Any:
        yield writer.writerow(header)
        for row in rows:
            # A cell starting with = + - @ would be a formula in a spreadsheet.
            yield writer.writerow(["'" + str(c) if str(c)[:1] in ("=", "+", "-", "@") else c for c in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@staff_page(action="dashboard.export", need=_coordinators_and_admins)
def dashboard_csv(request: HttpRequest) -> StreamingHttpResponse:
    board = dashboard_build()
    audit_record(request=request, action="dashboard.export")
    rows: list[list[Any]] = [["referrals_per_week", week.isoformat(), n] for week, n in board.weeks]
    rows += [["funnel", label, n] for label, n in board.funnel]
    rows += [
        ["turnaround", "released", board.released_count],
        ["turnaround", "on_time", board.on_time_count],
        [
            "turnaround",
            "median_days",
            board.median_turnaround_days if board.median_turnaround_days is not None else "",
        ],
        ["turnaround", "promise_business_days", board.turnaround_business_days],
        ["this_month", "referrals", board.month_referrals],
    ]
    rows += [["outcomes_this_month", label, n] for label, n in board.month_outcomes.items()]
    rows += [["outcomes_total", label, n] for label, n in board.outcome_totals]
    rows += [
        [f"revenue_last_{board.revenue_weeks}_weeks", total.currency.upper(), total.display]
        for total in board.revenue
    ]
    return _csv_response("dashboard.csv", ["section", "label", "value"], rows)


# --- Audit log ----------------------------------------------------------------------------------


@require_GET
@staff_page(action="audit.view", need=admin_only)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_events(**{k: v for k, v in filters.items() if v})
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    numbers = audit_case_numbers(list(page.object_list))
    for event in page.object_list:
        event.case_number = numbers.get(event.case_id or 0, "")  # type: ignore[attr-defined]
    params = request.GET.copy()
    params.pop("page", None)
    audit_record(request=request, action="audit.view")
    return render(
        request,
        "review/audit.html",
        {"form": form, "page": page, "filter_query": params.urlencode()},
    )


@require_GET
@staff_page(action="audit.export", need=admin_only)
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    form = AuditFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    audit_record(request=request, action="audit.export")
    events = audit_events(**{k: v for k, v in filters.items() if v})

    def rows() -> Any:
        for chunk_start in range(0, 10**9, 2000):
            chunk = list(events[chunk_start : chunk_start + 2000])
            if not chunk:
                return
            numbers = audit_case_numbers(chunk)
            for e in chunk:
                yield [
                    e.at.isoformat(),
                    e.actor_email,
                    e.action,
                    "allowed" if e.allowed else "refused",
                    numbers.get(e.case_id, "") if e.case_id else "",
                    e.object_ref,
                    e.ip_address or "",
                    e.detail,
                ]

    return _csv_response(
        "audit-log.csv", ["at", "who", "action", "result", "case", "object", "ip", "detail"], rows()
    )
