"""Peer review: a second reviewer checks a signed opinion before it is released.

Staff (coordinators, or the opinion's author) ask a named reviewer; or, when the institution
sets a rate, signing sends that share of opinions to the least loaded other reviewer (if no one
is free, the review waits for a coordinator to name one). The peer agrees or disagrees,
countersigning with their password or authenticator code; a disagreement says why. While a
review waits or disagrees the opinion is not released (``opinion_release`` asks
``peer_review_blocking``) until the peer agrees after all, or an administrator overrides it with
a reason. Every step notifies the people it concerns (``staff_notify``) and is audited by the
views.
"""

from __future__ import annotations

import secrets
import uuid

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from intake.models import Case
from review.models import CaseNote, Opinion, PeerReview, ReviewerProfile, StaffNotification
from review.selectors import review_settings_get, reviewer_loads
from review.services import PROOF_NEEDED_MESSAGE, WRONG_SECRET_MESSAGE, ReviewError, secret_ok
from review.staff_notifications import coordinators, staff_notify

Verdict = PeerReview.Verdict
Kind = StaffNotification.Kind

PEER_NOT_SIGNED_MESSAGE = "A peer review can be asked for once the opinion is signed."
PEER_RELEASED_MESSAGE = "The opinion has been released: it is too late for a peer review."
PEER_NOT_A_PEER_MESSAGE = "Choose an active reviewer other than the opinion's author."
PEER_NO_REVIEW_MESSAGE = "No peer review of this case is waiting for you."
PEER_VERDICT_MESSAGE = "Choose whether you agree or disagree."
PEER_DISAGREE_COMMENT_MESSAGE = "Say why you disagree: the author and the coordinators read it."
PEER_WRONG_SECRET_MESSAGE = WRONG_SECRET_MESSAGE.replace(
    "the opinion was not signed", "your answer was not recorded"
)
PEER_PROOF_NEEDED_MESSAGE = PROOF_NEEDED_MESSAGE.replace("to sign", "to countersign").replace(
    "The opinion was not signed.", "Your answer was not recorded."
)
PEER_OVERRIDE_ADMINS_MESSAGE = "Only an administrator can release without the peer reviewer's agreement."
PEER_OVERRIDE_REASON_MESSAGE = "Give the reason for releasing without the peer reviewer's agreement."
PEER_NOTHING_TO_OVERRIDE_MESSAGE = "This peer review does not hold up the release."
PEER_WAITING_MESSAGE = (
    "A peer review is waiting: the opinion can be released once the peer reviewer agrees, "
    "or an administrator overrides it with a reason."
)
PEER_DISAGREES_MESSAGE = (
    "The peer reviewer disagrees: the opinion can be released once they agree, "
    "or an administrator overrides it with a reason."
)

# A review holds up the release while it waits or disagrees, unless overridden.
BLOCKING = Q(overridden_at__isnull=True) & ~Q(verdict=Verdict.AGREE)


# --- Reads ------------------------------------------------------------------------------------


def peer_reviews_of(case: Case) -> list[PeerReview]:
    return list(
        PeerReview.objects.filter(case=case).select_related("reviewer", "requested_by", "overridden_by")
    )


def peer_review_blocking(*, case: Case) -> PeerReview | None:
    """The review that holds up the release of ``case``'s opinion, if any (a disagreement first)."""
    blocking = PeerReview.objects.filter(BLOCKING, case=case)
    return blocking.filter(verdict=Verdict.DISAGREE).first() or blocking.first()


def peer_review_release_refusal(*, case: Case) -> str:
    """Why the opinion cannot be released yet because of a peer review ("" if nothing holds it)."""
    review = peer_review_blocking(case=case)
    if review is None:
        return ""
    return PEER_DISAGREES_MESSAGE if review.verdict == Verdict.DISAGREE else PEER_WAITING_MESSAGE


def peer_review_release_refusal_of(reviews: list[PeerReview]) -> str:
    """``peer_review_release_refusal`` over reviews already read (the case page's)."""
    blocking = [r for r in reviews if r.blocks_release]
    if any(r.verdict == Verdict.DISAGREE for r in blocking):
        return PEER_DISAGREES_MESSAGE
    return PEER_WAITING_MESSAGE if blocking else ""


def peer_reviews_open() -> QuerySet[PeerReview]:
    """Reviews holding up an opinion waiting for release, for the dashboard: disagreements first
    (a case declined meanwhile waits for nothing)."""
    return (
        PeerReview.objects.filter(BLOCKING, case__status=Case.Status.OPINION_DRAFTED)
        .select_related("case", "reviewer")
        .order_by("-verdict", "requested_at")
    )


def peer_candidates(*, author_id: int | None) -> list[User]:
    """Active, available reviewers other than the author, below their maximum of open cases,
    the least loaded (then the one assigned longest ago) first."""
    loads = reviewer_loads()
    ranked = []
    reviewers = User.objects.filter(is_reviewer=True, is_active=True).exclude(pk=author_id or 0)
    for user in reviewers.select_related("reviewer_profile"):
        profile: ReviewerProfile | None = getattr(user, "reviewer_profile", None)
        load = loads.get(user.pk, 0)
        if profile is not None and (not profile.available or load >= profile.max_open_cases):
            continue
        last = profile.last_assigned_at.timestamp() if profile and profile.last_assigned_at else 0.0
        ranked.append((load, last, user.pk, user))
    ranked.sort(key=lambda row: row[:3])
    return [row[3] for row in ranked]


# --- Writes -----------------------------------------------------------------------------------


def _open_opinion(case: Case) -> Opinion:
    """The case's opinion, locked: signed and not yet released, or a ``ReviewError``."""
    opinion = Opinion.objects.select_for_update().filter(case=case).first()
    if opinion is None or not opinion.is_signed:
        raise ReviewError(PEER_NOT_SIGNED_MESSAGE)
    if opinion.released_at is not None:
        raise ReviewError(PEER_RELEASED_MESSAGE)
    return opinion


def _peer_asked_notify(*, case: Case, review: PeerReview) -> None:
    stamp = review.requested_at.isoformat()
    if review.reviewer is not None:
        staff_notify(
            users=[review.reviewer],
            kind=Kind.PEER_REVIEW,
            case=case,
            key=f"peer:{review.pk}:{review.reviewer_id}:{stamp}",
        )
    else:
        staff_notify(
            users=list(coordinators()),
            kind=Kind.PEER_UNASSIGNED,
            case=case,
            key=f"peer-unassigned:{review.pk}",
        )


@transaction.atomic
def peer_review_request(*, case: Case, by: User, reviewer: User) -> PeerReview:
    """Ask ``reviewer`` to review the signed opinion; a review already waiting is given to them
    instead (one waiting request per case).

    Precondition: ``by`` is a coordinator or the case's reviewer (the view checks)."""
    opinion = _open_opinion(case)
    if not (reviewer.is_reviewer and reviewer.is_active) or reviewer.pk == opinion.signed_by_id:
        raise ReviewError(PEER_NOT_A_PEER_MESSAGE)
    now = timezone.now()
    review = (
        PeerReview.objects.select_for_update().filter(BLOCKING, case=case, verdict=Verdict.PENDING).first()
    )
    if review is None:
        review = PeerReview(case=case)
    review.reviewer = reviewer
    review.requested_by = by
    review.requested_at = now
    review.save()
    _peer_asked_notify(case=case, review=review)
    return review


def peer_review_sample(*, case: Case, opinion: Opinion) -> PeerReview | None:
    """At signing: send the opinion for peer review at the institution's rate. Runs inside the
    signing transaction."""
    percent = review_settings_get().peer_review_percent
    if percent <= 0 or secrets.randbelow(100) >= percent:
        return None
    candidates = peer_candidates(author_id=opinion.signed_by_id)
    review = PeerReview.objects.create(
        case=case,
        reviewer=candidates[0] if candidates else None,
        sampled=True,
        requested_at=timezone.now(),
    )
    _peer_asked_notify(case=case, review=review)
    return review


@transaction.atomic
def peer_review_answer(
    *,
    case: Case,
    by: User,
    verdict: str,
    comment: str,
    secret: str,
    recently_authenticated: bool = False,
) -> PeerReview:
    """The peer's answer, countersigned with their password or a code (as an opinion is signed:
    ``recently_authenticated``, the session proved their credentials minutes ago, stands for the
    proof when no ``secret`` is sent). They may change it until the opinion is released (a
    disagreement resolved by agreeing after all)."""
    review = (
        PeerReview.objects.select_for_update()
        .filter(case=case, reviewer=by, overridden_at__isnull=True)
        .order_by("-requested_at", "-id")
        .first()
    )
    if review is None:
        raise ReviewError(PEER_NO_REVIEW_MESSAGE)
    opinion = _open_opinion(case)
    if verdict not in (Verdict.AGREE, Verdict.DISAGREE):
        raise ReviewError(PEER_VERDICT_MESSAGE)
    if verdict == Verdict.DISAGREE and not comment.strip():
        raise ReviewError(PEER_DISAGREE_COMMENT_MESSAGE)
    if (secret or not recently_authenticated) and not secret_ok(by, secret):
        raise ReviewError(PEER_WRONG_SECRET_MESSAGE if secret else PEER_PROOF_NEEDED_MESSAGE)
    now = timezone.now()
    review.verdict = verdict
    review.comment = comment.strip()
    review.answered_at = now
    review.save(update_fields=["verdict", "comment", "answered_at"])
    if verdict == Verdict.DISAGREE:
        people = list(coordinators())
        if opinion.signed_by is not None and opinion.signed_by.is_active:
            people.append(opinion.signed_by)
        staff_notify(
            users=people,
            kind=Kind.PEER_DISAGREED,
            case=case,
            key=f"peer-disagreed:{review.pk}:{now.isoformat()}",
        )
    return review


@transaction.atomic
def peer_review_override(*, case: Case, review_id: uuid.UUID, by: User, reason: str) -> PeerReview:
    """An administrator lets the opinion be released without the peer's agreement; the reason is
    kept on the review and as an internal note."""
    if not by.is_institution_admin:
        raise ReviewError(PEER_OVERRIDE_ADMINS_MESSAGE)
    review = PeerReview.objects.select_for_update().filter(case=case, public_id=review_id).first()
    if review is None or not review.blocks_release:
        raise ReviewError(PEER_NOTHING_TO_OVERRIDE_MESSAGE)
    _open_opinion(case)
    if not reason.strip():
        raise ReviewError(PEER_OVERRIDE_REASON_MESSAGE)
    review.overridden_by = by
    review.overridden_at = timezone.now()
    review.override_reason = reason.strip()
    review.save(update_fields=["overridden_by", "overridden_at", "override_reason"])
    CaseNote.objects.create(case=case, author=by, text=f"Peer review overridden: {reason.strip()}")
    return review
