"""Whether a case waits for a fee, as the intake flow asks it.

The fee, its waivers and its payment belong to the payments app, which sits above intake (it
moves a paid case on through intake's status changes). Intake never imports it (import-linter
holds it to that): the payments app registers its rule here when Django starts
(``PaymentsConfig.ready``). Without a registration the question cannot be answered, and asking
it is a configuration error, never a silent "free": a case must not skip a fee the institution
charges because an app failed to load.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from intake.models import Case

CasePaymentRequired = Callable[..., bool]
CasePriceFreeze = Callable[..., object]

_case_payment_required: CasePaymentRequired | None = None
_case_price_freeze: CasePriceFreeze | None = None


def case_payment_rule_register(rule: CasePaymentRequired) -> None:
    """Called once at start-up by the app that owns fees: ``rule(case=case) -> bool``."""
    global _case_payment_required
    _case_payment_required = rule


def case_payment_required(*, case: Case) -> bool:
    """Whether the institution still waits for a fee for ``case`` (see the payments rule)."""
    if _case_payment_required is None:
        raise ImproperlyConfigured("No fee rule is registered: is the payments app installed?")
    return bool(_case_payment_required(case=case))


def case_price_freeze_register(rule: CasePriceFreeze) -> None:
    """Called once at start-up by the app that owns fees: ``rule(case=case)`` records today's fee
    as the price of ``case`` (once; later calls change nothing)."""
    global _case_price_freeze
    _case_price_freeze = rule


def case_price_freeze(*, case: Case) -> None:
    """Fix the fee the patient is shown now as the price of ``case`` (a write, by the payments
    app): called when the patient starts the case, so a fee change while they fill the steps in
    does not change what they pay, and at submission for a case made before that."""
    if _case_price_freeze is None:
        raise ImproperlyConfigured("No price rule is registered: is the payments app installed?")
    _case_price_freeze(case=case)
