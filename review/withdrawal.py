"""The patient takes back their request: a draft is deleted (rows and files), a sent case is
withdrawn (a status change the care team sees), with the refund rules shown before they
confirm.

Lives in the review app because withdrawing touches the case's review and its payment: review
sits above payments and intake, so it can ask both.

The refund rule: a card payment is refunded in full while no physician has started reading
the case (sent, or given to a physician who has not opened it yet); once the review has begun,
the fee pays for the physician's time and is not refunded. A waived fee has nothing to refund.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from intake.drafts import draft_delete
from intake.models import Case
from intake.workflow import CaseTransitionRefused, case_status_change
from payments.models import Payment
from payments.money import money_format
from payments.services import RefundOutcome, case_refund

# The states a patient may withdraw from: sent, and not yet answered.
WITHDRAWABLE_STATES = frozenset(
    {
        Case.Status.AWAITING_PAYMENT,
        Case.Status.SUBMITTED,
        Case.Status.ASSIGNED,
        Case.Status.IN_REVIEW,
        Case.Status.INFO_REQUESTED,
    }
)
# Withdrawn from these, a card payment is refunded in full (no physician has started).
REFUNDED_STATES = frozenset({Case.Status.AWAITING_PAYMENT, Case.Status.SUBMITTED, Case.Status.ASSIGNED})

NOT_WITHDRAWABLE = gettext_lazy(
    "This request can no longer be withdrawn: the opinion is being finished or is ready."
)
NOT_A_DRAFT = gettext_lazy(
    "Only a request that has not been sent can be deleted. A sent request can be withdrawn."
)
PAYMENT_IN_PROGRESS = gettext_lazy(
    "Your payment is still being confirmed by your bank. Please withdraw once it is confirmed, or "
    "contact the institution."
)


class WithdrawalRefused(Exception):
    pass


@dataclass(frozen=True)
class WithdrawalTerms:
    """What withdrawing ``case`` now would mean for the patient's money, in their words."""

    allowed: bool
    refund_amount: str  # "" when nothing is refunded
    explanation: str


def case_withdrawal_terms(*, case: Case) -> WithdrawalTerms:
    if case.status not in WITHDRAWABLE_STATES:
        return WithdrawalTerms(allowed=False, refund_amount="", explanation=str(NOT_WITHDRAWABLE))
    payment = Payment.objects.filter(case=case).first()
    if payment is not None and payment.status == Payment.Status.PROCESSING:
        return WithdrawalTerms(allowed=False, refund_amount="", explanation=str(PAYMENT_IN_PROGRESS))
    if payment is None or payment.status != Payment.Status.PAID or payment.amount_paid == 0:
        explanation = (
            _("The fee was waived for this case, so there is nothing to refund.")
            if payment is not None and payment.status == Payment.Status.WAIVED
            else _("You have paid nothing for this request, so nothing is charged or refunded.")
        )
        return WithdrawalTerms(allowed=True, refund_amount="", explanation=explanation)
    amount = money_format(amount=payment.amount_paid - payment.amount_refunded, currency=payment.currency)
    if case.status in REFUNDED_STATES:
        return WithdrawalTerms(
            allowed=True,
            refund_amount=amount,
            explanation=_(
                "No physician has started reading your case yet, so your payment of %(amount)s is "
                "refunded in full to your card. Depending on your bank, it shows within 5 to 10 days."
            )
            % {"amount": amount},
        )
    return WithdrawalTerms(
        allowed=True,
        refund_amount="",
        explanation=_(
            "A physician has already started reviewing your case, so your payment of %(amount)s is "
            "not refunded."
        )
        % {"amount": amount},
    )


def case_withdraw(*, case: Case) -> RefundOutcome | None:
    """Withdraw a sent case at the patient's request; refund them as ``case_withdrawal_terms``
    said. The case is locked and its state checked under the lock, so a withdrawal racing a
    staff action (or a second click) changes it once. Raises ``WithdrawalRefused``.

    Precondition: ``case`` was fetched through ``intake.access.access_patient_case``."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        terms = case_withdrawal_terms(case=case)
        if not terms.allowed:
            raise WithdrawalRefused(terms.explanation)
        try:
            case_status_change(case=case, status=Case.Status.WITHDRAWN)
        except CaseTransitionRefused as refusal:
            raise WithdrawalRefused(str(refusal)) from refusal
        if not terms.refund_amount:
            return None
        # Asked for in this transaction, made by the outbox's worker once it commits.
        return case_refund(case=case, reason="Withdrawn by the patient")


def case_draft_delete(*, case: Case) -> None:
    """Delete a request that was never sent, with its files (``intake.drafts.draft_delete``,
    as abandoned drafts are). Raises ``WithdrawalRefused`` for a sent case (it is withdrawn
    instead, and kept) or one for which money moved (the payments app refuses)."""
    try:
        deleted = draft_delete(case=case)
    except ValidationError as refusal:
        raise WithdrawalRefused(str(NOT_A_DRAFT)) from refusal
    if not deleted:
        raise WithdrawalRefused(str(NOT_A_DRAFT))
