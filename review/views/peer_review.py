"""Peer review on the case page: asking a second reviewer, their countersigned answer, and an
administrator's override of a disagreement."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from accounts.reauthentication import session_recently_authenticated
from audit.services import audit_record
from intake.models import Case
from review import peer_review
from review.access import is_coordinator
from review.decorators import case_endpoint
from review.forms import PeerReviewAnswerForm, PeerReviewOverrideForm, PeerReviewRequestForm
from review.services import ReviewError
from review.views.common import back_to_case, request_user

ANCHOR = "peer-review"


def _refuse(request: HttpRequest, case: Case, action: str) -> None:
    audit_record(request=request, action=action, case=case, allowed=False, detail={"reason": "forbidden"})
    raise PermissionDenied


@require_POST
@case_endpoint(action="peer_review.request", audit_success=False)
def peer_review_request(request: HttpRequest, case: Case) -> HttpResponse:
    """Coordinators, or the case's reviewer, ask a named peer."""
    user = request_user(request)
    assignment = getattr(case, "assignment", None)
    if not (is_coordinator(user) or (assignment is not None and assignment.reviewer_id == user.pk)):
        _refuse(request, case, "peer_review.request")
    form = PeerReviewRequestForm(request.POST)
    peer = User.objects.filter(pk=form.cleaned_data["reviewer"]).first() if form.is_valid() else None
    try:
        if peer is None:
            raise ReviewError(peer_review.PEER_NOT_A_PEER_MESSAGE)
        review = peer_review.peer_review_request(case=case, by=user, reviewer=peer)
    except ReviewError as error:
        messages.error(request, str(error))
        return back_to_case(case, ANCHOR)
    audit_record(
        request=request,
        action="peer_review.request",
        case=case,
        object_ref=str(review.public_id),
        detail={"peer": peer.pk},
    )
    messages.success(request, f"Peer review asked of {peer}. The opinion waits for their answer.")
    return back_to_case(case, ANCHOR)


@require_POST
@case_endpoint(action="peer_review.answer", role="peer", audit_success=False)
def peer_review_answer(request: HttpRequest, case: Case) -> HttpResponse:
    """The peer agrees or disagrees, countersigning (limited like signing an opinion)."""
    form = PeerReviewAnswerForm(request.POST)
    data = form.cleaned_data if form.is_valid() else {}
    user = request_user(request)
    if not attempt_allowed(request, action="opinion_sign", user=user):
        audit_record(
            request=request,
            action="peer_review.answer",
            case=case,
            allowed=False,
            detail={"reason": "rate_limited"},
        )
        messages.error(request, TOO_MANY_ATTEMPTS)
        return back_to_case(case, ANCHOR)
    try:
        review = peer_review.peer_review_answer(
            case=case,
            by=user,
            verdict=data.get("verdict", ""),
            comment=request.POST.get("comment", "")[:10000],
            secret=data.get("secret", ""),
            recently_authenticated=session_recently_authenticated(request, user),
        )
    except ReviewError as error:
        audit_record(
            request=request,
            action="peer_review.answer",
            case=case,
            allowed=False,
            detail={"reason": "refused"},
        )
        messages.error(request, str(error))
        return back_to_case(case, ANCHOR)
    audit_record(
        request=request,
        action="peer_review.answer",
        case=case,
        object_ref=str(review.public_id),
        detail={"verdict": review.verdict},
    )
    messages.success(
        request,
        "You agreed; the opinion can be released."
        if review.verdict == review.Verdict.AGREE
        else "You disagreed; the opinion is held until this is resolved.",
    )
    return back_to_case(case, ANCHOR)


@require_POST
@case_endpoint(action="peer_review.override", role="coordinator", audit_success=False)
def peer_review_override(request: HttpRequest, case: Case, review_id: uuid.UUID) -> HttpResponse:
    """An administrator releases the hold of a waiting or disagreeing peer review, with a reason."""
    user = request_user(request)
    if not user.is_institution_admin:
        _refuse(request, case, "peer_review.override")
    form = PeerReviewOverrideForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        review = peer_review.peer_review_override(case=case, review_id=review_id, by=user, reason=reason)
    except ReviewError as error:
        messages.error(request, str(error))
        return back_to_case(case, ANCHOR)
    audit_record(
        request=request,
        action="peer_review.override",
        case=case,
        object_ref=str(review.public_id),
        detail={"verdict": review.verdict},
    )
    messages.success(request, "Peer review overridden; the opinion can be released.")
    return back_to_case(case, ANCHOR)
