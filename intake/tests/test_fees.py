"""Intake asks the payments app, through a registration, whether a case waits for a fee; with no
rule registered it refuses to answer rather than treat every case as free."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from intake import fees
from intake.models import Case
from payments.services import case_payment_required as payments_rule


def test_it_asks_the_payments_apps_rule() -> None:
    assert fees._case_payment_required is payments_rule


def test_it_fails_closed_when_no_rule_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fees, "_case_payment_required", None)
    with pytest.raises(ImproperlyConfigured):
        fees.case_payment_required(case=Case())
