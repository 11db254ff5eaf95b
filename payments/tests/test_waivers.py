"""Waiver codes: a valid one settles the fee and sends the case on; an expired, used-up or
other institution's code is refused with a clear message and changes nothing."""

from __future__ import annotations

import datetime
import threading

from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from intake.models import Case
from payments.models import Payment, WaiverCode
from payments.services import (
    WAIVER_APPLIED,
    WAIVER_EXPIRED,
    WAIVER_REFUSED,
    WAIVER_UNKNOWN,
    WAIVER_USED_UP,
    PaymentError,
    waiver_apply,
)
from payments.tests.conftest import case_awaiting_payment, fee_set, signed_in
from tenants.models import Institution


def _code(institution: Institution, code: str, **fields: object) -> WaiverCode:
    with tenant_context(institution):
        return WaiverCode.objects.create(code=code, **fields)


def _use(institution: Institution, case: Case, code: str) -> str:
    client = signed_in(institution, case.owner.email)
    response = client.post(f"/payments/case/{case.public_id}/waiver/", {"code": code}, follow=True)
    return response.content.decode()


def _state(institution: Institution, case: Case) -> tuple[str, str]:
    with tenant_context(institution):
        case.refresh_from_db()
        return case.status, Payment.objects.get(case=case).status


def test_it_waives_the_fee_and_sends_the_case_to_the_queue(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    waiver = _code(cancer, "HARDSHIP-24", max_uses=5)
    case = case_awaiting_payment(cancer)
    page = _use(cancer, case, " hardship-24 ")
    assert WAIVER_APPLIED in page and "No payment needed" in page
    assert _state(cancer, case) == (Case.Status.SUBMITTED, Payment.Status.WAIVED)
    with tenant_context(cancer):
        waiver.refresh_from_db()
    assert waiver.uses == 1


def test_it_refuses_an_expired_code(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    _code(cancer, "OLD-CODE", expires_at=timezone.now() - datetime.timedelta(minutes=1))
    case = case_awaiting_payment(cancer)
    assert WAIVER_EXPIRED in _use(cancer, case, "OLD-CODE")
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_refuses_a_used_up_code(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    waiver = _code(cancer, "ONCE-ONLY", max_uses=1)
    first, second = case_awaiting_payment(cancer), case_awaiting_payment(cancer)
    assert WAIVER_APPLIED in _use(cancer, first, "ONCE-ONLY")
    assert WAIVER_USED_UP in _use(cancer, second, "ONCE-ONLY")
    assert _state(cancer, second) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)
    with tenant_context(cancer):
        waiver.refresh_from_db()
    assert waiver.uses == 1


def test_it_refuses_another_institutions_code(
    cancer: Institution, neuro: Institution, no_stripe: None
) -> None:
    fee_set(cancer)
    _code(neuro, "NEURO-REFERRAL")
    case = case_awaiting_payment(cancer)
    assert WAIVER_UNKNOWN in _use(cancer, case, "NEURO-REFERRAL")
    assert _state(cancer, case) == (Case.Status.AWAITING_PAYMENT, Payment.Status.UNPAID)


def test_it_refuses_a_withdrawn_code(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    _code(cancer, "WITHDRAWN", active=False)
    case = case_awaiting_payment(cancer)
    assert WAIVER_UNKNOWN in _use(cancer, case, "WITHDRAWN")


def test_it_counts_one_use_per_case(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    waiver = _code(cancer, "TWICE")
    case = case_awaiting_payment(cancer)
    _use(cancer, case, "TWICE")
    _use(cancer, case, "TWICE")
    with tenant_context(cancer):
        waiver.refresh_from_db()
    assert waiver.uses == 1


def test_it_gives_the_last_use_of_a_code_to_exactly_one_of_two_racing_patients(
    cancer: Institution, no_stripe: None
) -> None:
    """Two patients submit the last use at the same moment, on two database connections."""
    from django.db import connections

    # Committed data, visible to the two threads' own connections; cleaned up below.
    results: list[str] = []
    created: dict[str, object] = {}

    def setup() -> None:
        with tenant_context(cancer):
            created["waiver"] = WaiverCode.objects.create(code="LAST-ONE-RACE", max_uses=1)
            cases = [case_awaiting_payment(cancer) for _ in range(2)]
            for case in cases:  # the price these patients were shown
                Payment.objects.create(case=case, amount=10000, currency="usd")
            created["cases"] = cases
        connection.close()

    def race(case: Case, barrier: threading.Barrier) -> None:
        try:
            with tenant_context(cancer):
                barrier.wait()
                try:
                    waiver_apply(case=case, code="LAST-ONE-RACE")
                    results.append("waived")
                except PaymentError as error:
                    results.append(error.message)
        finally:
            connections.close_all()

    def cleanup() -> None:
        with tenant_context(cancer):
            cases = created["cases"]
            assert isinstance(cases, list)
            Payment.objects.filter(case__in=cases).delete()
            WaiverCode.objects.filter(code="LAST-ONE-RACE").delete()
            Case.objects.filter(pk__in=[c.pk for c in cases]).delete()
        connection.close()

    thread = threading.Thread(target=setup)
    thread.start()
    thread.join()
    try:
        cases = created["cases"]
        assert isinstance(cases, list)
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=race, args=(case, barrier)) for case in cases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == sorted(["waived", WAIVER_USED_UP])
    finally:
        thread = threading.Thread(target=cleanup)
        thread.start()
        thread.join()


def test_it_gives_one_answer_for_every_refused_code(cancer: Institution, no_stripe: None) -> None:
    fee_set(cancer)
    _code(cancer, "OLD-CODE-2020", expires_at=timezone.now() - datetime.timedelta(days=1))
    _code(cancer, "WITHDRAWN-CODE", active=False)
    case = case_awaiting_payment(cancer)

    def message(code: str) -> str:
        page = _use(cancer, case, code)
        return page.split('class="messages"')[1].split("</ul>")[0] if 'class="messages"' in page else page

    answers = {message(code) for code in ("OLD-CODE-2020", "WITHDRAWN-CODE", "NO-SUCH-CODE-AT-ALL")}
    assert len(answers) == 1 and WAIVER_REFUSED in answers.pop()


def test_it_throttles_waiver_code_tries(cancer: Institution, no_stripe: None) -> None:
    from django.core.cache import cache
    from django.test import override_settings

    from accounts.ratelimits import TOO_MANY_ATTEMPTS
    from config.settings.base import SR_RATE_LIMITS

    fee_set(cancer)
    _code(cancer, "THE-REAL-CODE-1", max_uses=5)
    case = case_awaiting_payment(cancer)
    cache.clear()
    with override_settings(ACCOUNT_RATE_LIMITS=SR_RATE_LIMITS):
        client = signed_in(cancer, case.owner.email)
        url = f"/payments/case/{case.public_id}/waiver/"
        for guess in range(10):
            page = client.post(url, {"code": f"GUESS-{guess:08d}"}, follow=True).content.decode()
            assert WAIVER_REFUSED in page
        page = client.post(url, {"code": "THE-REAL-CODE-1"}, follow=True).content.decode()
    cache.clear()
    assert TOO_MANY_ATTEMPTS in page
    assert _state(cancer, case)[1] != Payment.Status.WAIVED
