"""Emails about payments: only for tasks a previous version queued to the broker (the services
write them to the outbox with the change now). Each claims its email: a second run sends nothing."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="payments.payment_receipt", ignore_result=True, soft_time_limit=60, time_limit=90)
def payment_receipt(payment_id: int) -> None:
    from payments.notifications import payment_receipt_send

    payment_receipt_send(payment_id=payment_id)


@shared_task(name="payments.payment_refund_notice", ignore_result=True, soft_time_limit=60, time_limit=90)
def payment_refund_notice(payment_id: int) -> None:
    from payments.notifications import payment_refund_notice_send

    payment_refund_notice_send(payment_id=payment_id)
