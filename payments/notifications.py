"""Branded emails to patients about their payments: a receipt, and a refund notice.

Each is claimed with a conditional UPDATE and written to the outbox in the same transaction:
marked sent exactly when the email is queued for delivery (the outbox retries it until the mail
server takes it), and a task run twice (a retry, a duplicate enqueue) sends one email.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy, gettext_noop

from branding.emails import branded_email_send
from intake.notifications import case_link_paths, recipient_key
from intake.recipients import case_recipients
from payments.models import Payment
from payments.money import money_lazy
from tenants.schema import current_institution


def _payment_email_send(
    *, payment_id: int, status: str, sent_field: str, subject: str, template: str, amount_field: str
) -> bool:
    """Claim the email (a conditional UPDATE of ``sent_field``) and write it to the outbox, in
    one transaction: a failure to write it leaves the claim undone."""
    with transaction.atomic():
        claimed = Payment.objects.filter(
            pk=payment_id, status=status, **{f"{sent_field}__isnull": True}
        ).update(**{sent_field: timezone.now()})
        if not claimed:
            return False
        payment = Payment.objects.select_related("case", "case__owner").get(pk=payment_id)
        _send(payment=payment, subject=subject, template=template, amount_field=amount_field, key=sent_field)
    return True


def _send(*, payment: Payment, subject: str, template: str, amount_field: str, key: str) -> None:
    institution = current_institution()
    case = payment.case
    for recipient in case_recipients(case=case):
        branded_email_send(
            institution=institution,
            to=[recipient.address],
            subject=format_lazy("{} · {}", gettext_lazy(subject), institution.name),
            template=template,
            context={
                "payment": payment,
                "case": case,
                "recipient": recipient,
                # Lazy: written when the email is, in the recipient's language (1.234,50 €).
                "amount": money_lazy(amount=getattr(payment, amount_field), currency=payment.currency),
                **case_link_paths(case=case),
            },
            dedupe_key=f"payment:{payment.pk}:{key}:{recipient_key(recipient)}",
            language=recipient.language,
        )


def payment_receipt_send(*, payment_id: int) -> bool:
    return _payment_email_send(
        payment_id=payment_id,
        status=Payment.Status.PAID,
        sent_field="receipt_sent_at",
        subject=gettext_noop("Your payment receipt"),
        template="payments/email/receipt",
        amount_field="amount_paid",
    )


def payment_refund_notice_send(*, payment_id: int) -> bool:
    return _payment_email_send(
        payment_id=payment_id,
        status=Payment.Status.REFUNDED,
        sent_field="refund_notice_sent_at",
        subject=gettext_noop("Your payment has been refunded"),
        template="payments/email/refund",
        amount_field="amount_refunded",
    )
