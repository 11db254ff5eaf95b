"""The case's state machine: which status may follow which, and the one function that moves a
case (intake, review and payments all call it).

A move is a conditional UPDATE (``… WHERE status = <the status the caller saw>``): of two staff
members acting on one case at once (decline and release, two information requests) one wins and
the other is refused with ``CaseTransitionRefused``, whose message says what happened; nothing is
overwritten silently and the patient gets one email. The email is written to the outbox in the
same transaction, so it is sent if and only if the move commits.
"""

from __future__ import annotations

from django.dispatch import Signal
from django.utils import timezone

from intake.models import Case
from intake.notifications import PATIENT_NOTICES, case_status_email_send

S = Case.Status

# Every allowed move. A status missing on the right of its row cannot be reached from it.
# The patient may withdraw a sent case until the opinion is being finished (review.withdrawal).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.AWAITING_PAYMENT}),
    S.AWAITING_PAYMENT: frozenset({S.SUBMITTED, S.DECLINED, S.WITHDRAWN}),
    S.SUBMITTED: frozenset({S.ASSIGNED, S.INFO_REQUESTED, S.DECLINED, S.WITHDRAWN}),
    S.ASSIGNED: frozenset({S.IN_REVIEW, S.INFO_REQUESTED, S.OPINION_DRAFTED, S.DECLINED, S.WITHDRAWN}),
    S.IN_REVIEW: frozenset({S.INFO_REQUESTED, S.OPINION_DRAFTED, S.DECLINED, S.WITHDRAWN}),
    S.INFO_REQUESTED: frozenset({S.SUBMITTED, S.OPINION_DRAFTED, S.DECLINED, S.WITHDRAWN}),
    S.OPINION_DRAFTED: frozenset({S.RELEASED, S.DECLINED}),
    S.RELEASED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.DECLINED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

CHANGED_MEANWHILE_MESSAGE = (
    "Someone else changed this case meanwhile: it is now “{now}”. Nothing was changed; "
    "reload the case to see where it stands."
)
NOT_ALLOWED_MESSAGE = "A case that is “{current}” cannot become “{target}”."


class CaseTransitionRefused(Exception):
    """The move is not allowed from the case's status, or the case moved meanwhile;
    ``str(error)`` is the message to show. Nothing was changed."""


# Sent after every move of a case's status, inside the move's transaction:
# ``case``, ``previous`` and ``status`` (review.staff_notifications listens).
case_status_changed = Signal()


def transition_allowed(*, current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def case_status_change(*, case: Case, status: str, note: str = "") -> Case:
    """Move ``case`` from the status it was read with to ``status``, and (in the same
    transaction, through the outbox) email the patient if the new state is one they are told
    about.

    A case already in ``status`` (read so, or moved there by someone else meanwhile) is left as
    it is and no second email is written: a repeated call (a retried task, a webhook delivered
    twice, a double click) is harmless. Raises ``CaseTransitionRefused`` for a move the table
    does not allow, or when the case moved elsewhere since it was read.
    """
    expected = case.status
    if expected == status:
        return case
    if not transition_allowed(current=expected, target=status):
        raise CaseTransitionRefused(
            NOT_ALLOWED_MESSAGE.format(current=S(expected).label, target=S(status).label)
        )
    now = timezone.now()
    changes: dict[str, object] = {"status": status, "status_changed": now, "updated": now}
    if status == S.SUBMITTED and case.submitted_at is None:
        changes["submitted_at"] = now
    moved = Case.objects.filter(pk=case.pk, status=expected).update(**changes)
    if not moved:
        case.refresh_from_db(fields=["status", "status_changed", "submitted_at", "updated"])
        if case.status == status:
            return case  # the same move, made by someone else: they wrote the email
        raise CaseTransitionRefused(CHANGED_MEANWHILE_MESSAGE.format(now=S(case.status).label))
    for field, value in changes.items():
        setattr(case, field, value)
    if status in PATIENT_NOTICES:
        case_status_email_send(case=case, note=note)
    # The staff workspace (a higher layer) tells its people, in this same transaction.
    case_status_changed.send(sender=Case, case=case, previous=expected, status=status)
    return case
