"""Branded emails to patients about their payments: a receipt, and a refund notice.

Each is claimed with a conditional UPDATE before it is sent, so a task run twice (a retry, a
duplicate enqueue) sends one email.
"""

from __future__ import annotations

from django.utils import timezone

from branding.emails import branded_email_send
from payments.models import Payment
from payments.money import money_format
from tenants.models import Institution
from tenants.schema import current_schema_name


def _recipients(payment: Payment) -> list[str]:
    case = payment.case
    return sorted({case.owner.email, *([case.patient_email] if case.patient_email else [])})


def payment_receipt_send(*, payment_id: int) -> bool:
    claimed = Payment.objects.filter(
        pk=payment_id, status=Payment.Status.PAID, receipt_sent_at__isnull=True
    ).update(receipt_sent_at=timezone.now())
    if not claimed:
        return False
    payment = Payment.objects.select_related("case", "case__owner").get(pk=payment_id)
    institution = Institution.objects.get(schema_name=current_schema_name())
    branded_email_send(
        institution=institution,
        to=_recipients(payment),
        subject=f"Your payment receipt · {institution.name}",
        template="payments/email/receipt",
        context={
            "payment": payment,
            "case": payment.case,
            "amount": money_format(amount=payment.amount_paid, currency=payment.currency),
        },
    )
    return True


def payment_refund_notice_send(*, payment_id: int) -> bool:
    claimed = Payment.objects.filter(
        pk=payment_id, status=Payment.Status.REFUNDED, refund_notice_sent_at__isnull=True
    ).update(refund_notice_sent_at=timezone.now())
    if not claimed:
        return False
    payment = Payment.objects.select_related("case", "case__owner").get(pk=payment_id)
    institution = Institution.objects.get(schema_name=current_schema_name())
    branded_email_send(
        institution=institution,
        to=_recipients(payment),
        subject=f"Your payment has been refunded · {institution.name}",
        template="payments/email/refund",
        context={
            "payment": payment,
            "case": payment.case,
            "amount": money_format(amount=payment.amount_refunded, currency=payment.currency),
        },
    )
    return True
