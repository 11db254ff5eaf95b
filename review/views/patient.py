"""The patient's side: the released opinion, its PDF, and follow-up questions."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_GET, require_http_methods

from accounts.http import InstitutionRequest
from audit.services import audit_record
from intake.models import Case
from review import services
from review.addenda import opinion_addenda, opinion_pdf_versions
from review.decorators import case_endpoint
from review.forms import FollowUpForm
from review.models import FollowUpQuestion, Opinion
from review.selectors import review_settings_get
from review.sharing import LIFETIMES_DAYS, opinion_shares_of
from review.views.common import request_user
from review.views.opinion import opinion_pdf_redirect

OPINION_NOT_RELEASED_MESSAGE = gettext_noop(
    "Your second opinion is not ready yet. We will email you when it is."
)


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
                services.follow_up_ask(
                    case=case, user=request_user(request), question=form.cleaned_data["question"]
                )
            except services.ReviewError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, "Your question was sent. We will email you when it is answered.")
                return redirect("review:patient_opinion", public_id=case.public_id)
    follow_ups = list(FollowUpQuestion.objects.filter(case=case))
    addenda = opinion_addenda(opinion) if opinion else []
    allowed = review_settings_get().follow_up_questions_allowed
    return render(
        request,
        "review/patient_opinion.html",
        {
            "case": case,
            "opinion": opinion,
            "not_ready_message": gettext(OPINION_NOT_RELEASED_MESSAGE),
            "follow_ups": follow_ups,
            "addenda": addenda,
            "pdf_versions": opinion_pdf_versions(opinion, addenda) if opinion else [],
            "questions_left": max(0, allowed - len(follow_ups)),
            "form": form,
            "shares": list(opinion_shares_of(case=case)),
            "share_days": LIFETIMES_DAYS,
            "now": timezone.now(),
        },
    )


@require_GET
@case_endpoint(action="opinion.download", role="patient")
def patient_opinion_pdf(
    request: InstitutionRequest, case: Case, version: int | None = None
) -> HttpResponseBase:
    return opinion_pdf_redirect(
        request, case, Opinion.objects.filter(case=case, released_at__isnull=False).first(), version
    )
