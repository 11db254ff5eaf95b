"""The patient-facing portal of an institution: home, the request wizard, case status.

Views parse input, fetch the case through ``intake.access`` and call one service. Every case
URL carries the opaque ``Case.public_id`` only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy, gettext_noop
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import InstitutionRequest, SignedInRequest
from accounts.models import User
from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from branding.selectors import brand_for_institution
from imaging.models import Report
from intake.access import access_patient_case
from intake.contact_email import patient_email_confirmed, patient_email_needs_confirming
from intake.drafts import draft_touched
from intake.fees import case_payment_required
from intake.forms import CasePatientForm, CaseQuestionForm
from intake.models import Case
from intake.selectors import (
    ALL_STEPS,
    case_list_for_patient,
    case_milestones,
    case_missing_items,
    case_patient_status,
    case_reusable_draft,
    case_upload_overview,
    case_wizard_steps,
)
from intake.services import (
    CaseIncomplete,
    DraftLimitReached,
    case_continue_link_send,
    case_patient_save,
    case_question_save,
    case_start,
    case_submit,
    case_wizard_step_set,
)

STEP_ONE_FIRST = gettext_noop("Please fill in the patient's details and agree to the terms first.")
CASE_ALREADY_SENT = gettext_noop("This request has been sent, so it can no longer be changed here.")
UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024  # what the browser sends per tus PATCH request

# Which case states open each step. Details and question can change only before sending;
# files and the summary reopen when the care team asks for more information.
_DRAFT = frozenset({Case.Status.DRAFT})
_FILES = frozenset({Case.Status.DRAFT, Case.Status.INFO_REQUESTED})
WITHDRAWABLE_BY_PATIENT = frozenset(
    {
        Case.Status.AWAITING_PAYMENT,
        Case.Status.SUBMITTED,
        Case.Status.ASSIGNED,
        Case.Status.IN_REVIEW,
        Case.Status.INFO_REQUESTED,
    }
)
STEP_STATES: dict[str, frozenset[str]] = {
    "patient": _DRAFT,
    "question": _DRAFT,
    "images": _FILES,
    "reports": _FILES,
    "summary": _FILES,
}

WizardView = Callable[[SignedInRequest, Case], HttpResponse]


def _step_url(case: Case, slug: str) -> str:
    return reverse(next(step.url_name for step in ALL_STEPS if step.slug == slug), args=[case.public_id])


def wizard_step(slug: str) -> Callable[[WizardView], Callable[..., HttpResponse]]:
    """Fetch the signed-in patient's case, check the step is open in its state, remember the
    step (so the patient comes back to it) and pass the case to the view."""

    def decorator(view: WizardView) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: SignedInRequest, public_id: uuid.UUID) -> HttpResponse:
            case = access_patient_case(request.user, public_id)
            if case.status not in STEP_STATES[slug]:
                messages.info(request, gettext(CASE_ALREADY_SENT))
                return redirect("intake:case_status", public_id=case.public_id)
            if slug != "patient" and case.consented_at is None:
                messages.info(request, gettext(STEP_ONE_FIRST))
                return redirect("intake:case_patient", public_id=case.public_id)
            if request.method == "GET" and case.status == Case.Status.DRAFT:
                case_wizard_step_set(case=case, step=slug)
                draft_touched(case=case)
            return view(request, case)

        return wrapper

    return decorator


def _wizard_context(case: Case, slug: str, **extra: Any) -> dict[str, Any]:
    steps = case_wizard_steps(case=case)
    index = next(i for i, step in enumerate(steps) if step.slug == slug)
    editable = case.status == Case.Status.DRAFT
    nav = [
        {
            "number": i + 1,
            "title": step.title,
            "state": "current" if i == index else ("done" if i < index else "todo"),
            # Back and forth between the steps that hold the patient's input.
            "url": _step_url(case, step.slug) if editable and step.slug in STEP_STATES else "",
        }
        for i, step in enumerate(steps)
    ]
    return {
        "case": case,
        "step": steps[index],
        "step_number": index + 1,
        "step_count": len(steps),
        "steps": nav,
        "previous_url": _step_url(case, steps[index - 1].slug) if index > 0 and editable else "",
        **extra,
    }


def portal_home(request: InstitutionRequest) -> HttpResponse:
    user = request.user
    if isinstance(user, User) and user.is_institution_staff:
        return redirect("review:home")
    cases = case_list_for_patient(user=user)[:5] if isinstance(user, User) else []
    return render(
        request,
        "intake/portal_home.html",
        {"cases": [(case, case_patient_status(case=case)) for case in cases]},
    )


@require_GET
def terms(request: InstitutionRequest) -> HttpResponse:
    """The institution's terms, formatted (sanitised HTML), or our built-in wording."""
    brand = brand_for_institution(institution=request.tenant)
    return render(request, "intake/terms.html", {"terms_html": brand.terms_html if brand else ""})


@require_GET
def privacy(request: InstitutionRequest) -> HttpResponse:
    """The institution's privacy notice, formatted (sanitised HTML), or our built-in wording."""
    brand = brand_for_institution(institution=request.tenant)
    return render(request, "intake/privacy.html", {"privacy_html": brand.privacy_html if brand else ""})


@login_required
@require_GET
def case_list(request: SignedInRequest) -> HttpResponse:
    cases = case_list_for_patient(user=request.user)
    return render(
        request,
        "intake/case_list.html",
        {"cases": [(case, case_patient_status(case=case)) for case in cases]},
    )


@login_required
@require_http_methods(["GET", "POST"])
def case_new(request: SignedInRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            case = case_start(owner=request.user)
        except DraftLimitReached as refused:
            messages.error(request, refused.message)
            return redirect("intake:case_list")
        return redirect("intake:case_patient", public_id=case.public_id)
    draft = case_reusable_draft(user=request.user)
    if draft is not None:
        return redirect("intake:case_patient", public_id=draft.public_id)
    return render(request, "intake/case_new.html")


@wizard_step("patient")
def case_patient(request: HttpRequest, case: Case) -> HttpResponse:
    form = CasePatientForm(request.POST or None, initial=CasePatientForm.initial_for(case))
    if request.method == "POST" and form.is_valid():
        case_patient_save(case=case, **form.cleaned_data)
        return redirect("intake:case_question", public_id=case.public_id)
    unconfirmed = patient_email_needs_confirming(case=case) and not patient_email_confirmed(case=case)
    return render(
        request,
        "intake/wizard/patient.html",
        _wizard_context(case, "patient", form=form, email_unconfirmed=unconfirmed),
    )


@wizard_step("question")
def case_question(request: HttpRequest, case: Case) -> HttpResponse:
    form = CaseQuestionForm(request.POST or None, initial=CaseQuestionForm.initial_for(case))
    if request.method == "POST" and form.is_valid():
        case_question_save(case=case, **form.cleaned_data)
        return redirect("intake:case_images", public_id=case.public_id)
    return render(request, "intake/wizard/question.html", _wizard_context(case, "question", form=form))


def _upload_context(request: HttpRequest, case: Case, step: str) -> dict[str, Any]:
    return {
        "tus_endpoint": "/intake/tus/",
        "status_url": reverse("intake:case_files_status", args=[case.public_id]) + f"?step={step}",
        "chunk_size": UPLOAD_CHUNK_SIZE,
        "back_step": step,
        "report_kinds": Report.Kind.choices,
        "overview": case_upload_overview(case=case),
    }


@wizard_step("images")
@require_GET
def case_images(request: HttpRequest, case: Case) -> HttpResponse:
    return render(
        request,
        "intake/wizard/images.html",
        _wizard_context(case, "images", **_upload_context(request, case, "images")),
    )


CONTINUE_LINK_SENT = gettext_lazy(
    "We have emailed a link to %(email)s. Open it on a computer and sign in to continue."
)


@login_required
@require_POST
def case_continue_link(request: SignedInRequest, public_id: uuid.UUID) -> HttpResponse:
    """A phone user asks for a link to this request's images step, to open on a computer."""
    case = access_patient_case(request.user, public_id)
    if case.status not in STEP_STATES["images"]:
        messages.info(request, gettext(CASE_ALREADY_SENT))
        return redirect("intake:case_status", public_id=case.public_id)
    if not attempt_allowed(request, action="continue_link", user=request.user):
        messages.error(request, gettext(TOO_MANY_ATTEMPTS))
    else:
        case_continue_link_send(case=case)
        messages.success(request, CONTINUE_LINK_SENT % {"email": request.user.email})
    return redirect("intake:case_images", public_id=case.public_id)


@wizard_step("reports")
@require_GET
def case_reports(request: HttpRequest, case: Case) -> HttpResponse:
    return render(
        request,
        "intake/wizard/reports.html",
        _wizard_context(case, "reports", **_upload_context(request, case, "reports")),
    )


@wizard_step("summary")
@require_http_methods(["GET", "POST"])
def case_summary(request: SignedInRequest, case: Case) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        try:
            case = case_submit(case=case, institution=request.tenant)
        except CaseIncomplete as incomplete:
            errors = incomplete.messages
        else:
            if case.status == Case.Status.AWAITING_PAYMENT:
                return redirect("intake:case_payment", public_id=case.public_id)
            return redirect("intake:case_submitted", public_id=case.public_id)
    overview = case_upload_overview(case=case)
    blocking, advisory = case_missing_items(case=case, overview=overview)
    context = _wizard_context(
        case,
        "summary",
        overview=overview,
        blocking=blocking,
        advisory=advisory,
        errors=errors,
        payment_required=case_payment_required(case=case),
        back_step="summary",
        report_kinds=Report.Kind.choices,
    )
    return render(request, "intake/wizard/summary.html", context, status=400 if errors else 200)


def _checkout_url(case: Case) -> str:
    return reverse("payments:checkout", kwargs={"case_id": case.public_id})


@login_required
@require_GET
def case_payment(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    case = access_patient_case(request.user, public_id)
    if case.status in STEP_STATES["summary"]:
        return redirect("intake:case_summary", public_id=case.public_id)
    if case.status != Case.Status.AWAITING_PAYMENT:
        return redirect("intake:case_submitted", public_id=case.public_id)
    context = _wizard_context(case, "payment", checkout_url=_checkout_url(case))
    return render(request, "intake/wizard/payment.html", context)


@login_required
@require_GET
def case_submitted(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    case = access_patient_case(request.user, public_id)
    if case.status in STEP_STATES["summary"]:
        return redirect("intake:case_summary", public_id=case.public_id)
    context = _wizard_context(case, "submitted", status=case_patient_status(case=case))
    return render(request, "intake/wizard/submitted.html", context)


def _opinion_url(case: Case) -> str:
    return reverse("review:patient_opinion", kwargs={"public_id": case.public_id})


@login_required
@require_GET
def case_status(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    case = access_patient_case(request.user, public_id)
    if case.status == Case.Status.DRAFT:
        # A draft has no status to show yet: back to the step the patient left.
        return redirect(_step_url(case, case.wizard_step if case.wizard_step in STEP_STATES else "patient"))
    context = {
        "case": case,
        "status": case_patient_status(case=case),
        "milestones": case_milestones(case=case),
        "overview": case_upload_overview(case=case),
        "opinion_url": _opinion_url(case)
        if case.status in (Case.Status.RELEASED, Case.Status.CLOSED)
        else "",
        # Sent and not yet answered: the patient may withdraw (review.withdrawal's rule).
        "can_withdraw": case.status in WITHDRAWABLE_BY_PATIENT,
    }
    return render(request, "intake/case_status.html", context)
