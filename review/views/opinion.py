"""The opinion: draft (autosave), sign, release, its PDF, and answers to the patient's follow-up
questions."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.http import InstitutionRequest, SignedInRequest
from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from accounts.reauthentication import session_recently_authenticated
from audit.services import audit_record
from intake.models import Case
from review import services
from review.access import is_coordinator
from review.addenda import opinion_addendum_sign, opinion_pdf_version_ensure
from review.decorators import case_endpoint, json_or_redirect
from review.forms import AddendumForm, AnswerForm, OpinionForm, SignForm
from review.models import FollowUpQuestion, Opinion
from review.views.common import back_to_case, request_user, run_step
from storage.tenant import tenant_storage


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
        return back_to_case(case, "opinion")
    submitted = {name: form.cleaned_data[name] for name in services.OPINION_FIELDS if name in request.POST}
    try:
        opinion = services.opinion_draft_save(case=case, author=request_user(request), data=submitted)
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
        return back_to_case(case, "opinion")
    if wants_json:
        return JsonResponse(
            {"saved": True, "updated": timezone.localtime(opinion.updated).strftime("%H:%M:%S")}
        )
    messages.success(request, "Draft saved.")
    return back_to_case(case, "opinion")


@require_POST
@case_endpoint(action="opinion.sign", role="reviewer", audit_success=False)
def opinion_sign(request: SignedInRequest, case: Case) -> HttpResponse:
    form = SignForm(request.POST)
    secret = form.cleaned_data["secret"] if form.is_valid() else ""
    # Signing asks for the password or a TOTP code again, unless this session proved them in the
    # last few minutes (a sign-in, allauth's records); limited like a sign-in, so a stolen
    # session cannot guess its way to a signature.
    if not attempt_allowed(request, action="opinion_sign", user=request_user(request)):
        audit_record(
            request=request,
            action="opinion.sign",
            case=case,
            allowed=False,
            detail={"reason": "rate_limited"},
        )
        messages.error(request, TOO_MANY_ATTEMPTS)
        return back_to_case(case, "opinion")
    try:
        opinion = services.opinion_sign(
            case=case,
            signer=request_user(request),
            secret=secret,
            institution=request.tenant,
            recently_authenticated=session_recently_authenticated(request, request.user),
        )
    except services.ReviewError as error:
        audit_record(
            request=request, action="opinion.sign", case=case, allowed=False, detail={"reason": "refused"}
        )
        messages.error(request, str(error))
        return back_to_case(case, "opinion")
    audit_record(
        request=request,
        action="opinion.sign",
        case=case,
        object_ref=str(opinion.public_id),
        detail={"sha256": opinion.content_sha256},
    )
    messages.success(request, "Opinion signed. It can no longer be changed.")
    return back_to_case(case, "opinion")


@require_POST
@case_endpoint(action="opinion.release", audit_success=False)
def opinion_release(request: HttpRequest, case: Case) -> HttpResponse:
    user = request_user(request)
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
        return back_to_case(case, "opinion")
    audit_record(request=request, action="opinion.release", case=case, object_ref=str(opinion.public_id))
    messages.success(request, "The opinion was released; the patient has been emailed.")
    return back_to_case(case, "opinion")


def opinion_pdf_redirect(
    request: InstitutionRequest, case: Case, opinion: Opinion | None, version: int | None = None
) -> HttpResponseBase:
    """A short-lived signed link to the stored PDF (the storage serves it, S3 or ours):
    ``version`` of it (1: as first signed), by default the current one (with every addendum)."""
    if opinion is None or not opinion.pdf_key:
        raise Http404
    try:
        key = opinion_pdf_version_ensure(opinion=opinion, institution=request.tenant, version=version)
    except LookupError:
        raise Http404 from None
    suffix = f"-v{version}" if version else ""
    url = tenant_storage().signed_url(
        key,
        expires=dt.timedelta(seconds=settings.SIGNED_URL_SECONDS),
        filename=f"second-opinion-{case.number or 'case'}{suffix}.pdf",
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
@case_endpoint(action="opinion.download")
def opinion_pdf(request: InstitutionRequest, case: Case, version: int | None = None) -> HttpResponseBase:
    return opinion_pdf_redirect(request, case, Opinion.objects.filter(case=case).first(), version)


@require_POST
@case_endpoint(action="opinion.addendum", role="reviewer", audit_success=False)
def opinion_addendum(request: SignedInRequest, case: Case) -> HttpResponse:
    """Write and sign an addendum in one step (the password or a code asked again, limited like
    signing the opinion)."""
    form = AddendumForm(request.POST)
    text = form.cleaned_data["text"] if form.is_valid() else request.POST.get("text", "")[:20000]
    secret = form.cleaned_data["secret"] if form.is_valid() else ""
    if not attempt_allowed(request, action="opinion_sign", user=request_user(request)):
        audit_record(
            request=request,
            action="opinion.addendum",
            case=case,
            allowed=False,
            detail={"reason": "rate_limited"},
        )
        messages.error(request, TOO_MANY_ATTEMPTS)
        return back_to_case(case, "addenda")
    try:
        addendum = opinion_addendum_sign(
            case=case,
            signer=request_user(request),
            secret=secret,
            text=text,
            institution=request.tenant,
            recently_authenticated=session_recently_authenticated(request, request.user),
        )
    except services.ReviewError as error:
        audit_record(
            request=request,
            action="opinion.addendum",
            case=case,
            allowed=False,
            detail={"reason": "refused"},
        )
        messages.error(request, str(error))
        return back_to_case(case, "addenda")
    audit_record(
        request=request,
        action="opinion.addendum",
        case=case,
        object_ref=str(addendum.public_id),
        detail={"sha256": addendum.content_sha256},
    )
    messages.success(
        request,
        "Addendum signed."
        + (
            " The patient has been emailed."
            if addendum.opinion.released_at
            else " The patient reads it with the opinion."
        ),
    )
    return back_to_case(case, "addenda")


@require_POST
@case_endpoint(action="followup.answer", audit_success=True)
def follow_up_answer(request: HttpRequest, case: Case, question_id: int) -> HttpResponse:
    question = FollowUpQuestion.objects.filter(case=case, pk=question_id).first()
    if question is None:
        raise Http404
    form = AnswerForm(request.POST)
    answer = form.cleaned_data["answer"] if form.is_valid() else ""
    return run_step(
        request,
        case,
        lambda: services.follow_up_answer(question=question, by=request_user(request), answer=answer),
        success="Answer sent.",
        anchor="follow-ups",
    )
