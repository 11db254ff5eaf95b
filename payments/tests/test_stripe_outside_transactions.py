"""No Stripe call is made inside a database transaction or row lock (issue 12 item 6): while
Stripe answers, the caller's PostgreSQL backend is idle, not "idle in transaction".

Everything runs on committed connections (``tests.live.committed``) so the state PostgreSQL
reports is the code's own, not the test's wrapping transaction; the double looks at
``pg_stat_activity`` for the caller's backend each time it is asked something.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from intake.models import Case
from intake.status import case_number_assign
from outbox.models import OutboxMessage
from outbox.services import message_deliver
from payments.connect.models import StripeAccount
from payments.models import Payment
from payments.services import STRIPE_REFUND, checkout_start
from review.models import CaseNote
from review.services import case_decline
from tenants.models import Institution
from tests.live import committed
from tests.stripe_double import RecordedRequest, StripeDouble

pytestmark = pytest.mark.django_db


class BackendWatch:
    """The PostgreSQL state of the backends in ``pids`` each time Stripe is called."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.seen: list[tuple[str, str]] = []

    def caller_is_watched(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.pids.append(cursor.fetchone()[0])

    def __call__(self, request: RecordedRequest) -> None:
        try:  # on the double's thread: a connection of its own
            with connection.cursor() as cursor:
                cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = ANY(%s)", [self.pids])
                self.seen += [(request.path, row[0]) for row in cursor.fetchall()]
        finally:
            connection.close()


@pytest.fixture
def watch(stripe_api: StripeDouble) -> Iterator[BackendWatch]:
    backend_watch = BackendWatch()
    stripe_api.on_api_request = backend_watch
    yield backend_watch
    stripe_api.on_api_request = None


def test_checkout_and_refund_call_stripe_with_no_transaction_open(
    cancer: Institution, stripe_api: StripeDouble, watch: BackendWatch, outbox_email: None, settings: Any
) -> None:
    schema = cancer.schema_name
    account_id = f"acct_test_outside_{len(stripe_api.accounts)}"
    stripe_api.accounts[account_id] = {"id": account_id, "object": "account", "charges_enabled": True}

    def setup() -> tuple[Case, User, int]:
        account = StripeAccount.objects.create(
            institution=cancer, account_id=account_id, charges_enabled=True, details_submitted=True
        )
        with schema_context(schema):
            case = Case.objects.create(
                owner=User.objects.get(email="patient@cancer.example.com"),
                patient_name="Pat Patient",
                status=Case.Status.AWAITING_PAYMENT,
                wizard_step="payment",
            )
            case_number_assign(case=case, prefix="CAN")
            Payment.objects.create(case=case, amount=10000, currency="usd")
            return case, User.objects.get(email="coordinator@cancer.example.com"), account.pk

    case, coordinator, account_pk = committed(setup)
    try:

        def pay() -> str:
            watch.caller_is_watched()
            with schema_context(schema):
                return checkout_start(
                    case=case,
                    institution=cancer,
                    success_url="http://x.test/ok",
                    cancel_url="http://x.test/no",
                )

        session_id = committed(pay).rsplit("/", 1)[-1]
        intent = stripe_api.pay(session_id)["payment_intent"]

        def decline_and_refund() -> tuple[str, str]:
            watch.caller_is_watched()
            with schema_context(schema):
                Payment.objects.filter(case=case).update(
                    status=Payment.Status.PAID,
                    amount_paid=10000,
                    payment_intent_id=intent,
                    paid_at=timezone.now(),
                )
                Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED)
                case_decline(
                    case=Case.objects.get(pk=case.pk), by=coordinator, reason="Outside our specialty"
                )
                message = OutboxMessage.objects.get(kind=STRIPE_REFUND, payload__payment_id=case.payment.pk)
                message_deliver(message_id=message.pk)
                return Payment.objects.get(case=case).status, OutboxMessage.objects.get(pk=message.pk).status

        payment_status, message_status = committed(decline_and_refund)
    finally:

        def cleanup() -> None:
            with schema_context(schema):
                OutboxMessage.objects.filter(created__gte=case.created).delete()
                Payment.objects.filter(case_id=case.pk).delete()
                CaseNote.objects.filter(case_id=case.pk).delete()
                Case.objects.filter(pk=case.pk).delete()
            StripeAccount.objects.filter(pk=account_pk).delete()

        committed(cleanup)
    assert payment_status == Payment.Status.REFUNDED and message_status == OutboxMessage.Status.DELIVERED
    paths = [path for path, _ in watch.seen]
    assert paths == ["/v1/checkout/sessions", "/v1/refunds"], watch.seen
    assert {state for _, state in watch.seen} == {"idle"}, watch.seen
