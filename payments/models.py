"""An institution's waiver codes and the payments of its cases (its own schema).

The fee itself (on/off, amount, currency) is part of the institution's service settings
(``tenants.InstitutionSettings``, public schema), edited by its admin with the other settings.
Amounts here are integers in the currency's minor unit (cents), as Stripe takes them.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from payments.money import money_format


class WaiverCode(models.Model):
    """A code that lets a patient submit without paying (hardship, referring physicians).

    ``uses`` is only ever raised by a conditional UPDATE, so two patients racing for the last
    use of a limited code cannot both get it.
    """

    code = models.CharField(max_length=40, unique=True)  # stored upper-case
    purpose = models.CharField(max_length=200, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.code


class Payment(models.Model):
    """What a case costs and what has been paid. Created when the patient reaches the price
    (the amount is a snapshot: changing the fee later does not change what they pay)."""

    class Status(models.TextChoices):
        NOT_REQUIRED = "not_required", "No fee"
        UNPAID = "unpaid", "Not paid"
        PROCESSING = "processing", "Payment pending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        WAIVED = "waived", "Fee waived"
        REFUNDED = "refunded", "Refunded"

    # States in which the fee is settled: nothing more is asked of the patient, and no late
    # failure or expiry event may move the payment out of them.
    SETTLED = (Status.NOT_REQUIRED, Status.PAID, Status.WAIVED, Status.REFUNDED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.OneToOneField("intake.Case", on_delete=models.PROTECT, related_name="payment")
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)  # lower-case ISO 4217, as Stripe writes it
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNPAID, db_index=True)
    waiver = models.ForeignKey(WaiverCode, null=True, blank=True, on_delete=models.PROTECT)

    # Stripe references (on the institution's connected account).
    stripe_account_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    amount_paid = models.PositiveIntegerField(default=0)
    amount_refunded = models.PositiveIntegerField(default=0)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_id = models.CharField(max_length=255, blank=True)
    # Why a refund could not be made through Stripe (shown to staff), or why a payment failed.
    refund_note = models.CharField(max_length=500, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    refund_notice_sent_at = models.DateTimeField(null=True, blank=True)

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    @property
    def is_settled(self) -> bool:
        return self.status in self.SETTLED

    @property
    def amount_display(self) -> str:
        return money_format(amount=self.amount, currency=self.currency)

    @property
    def amount_paid_display(self) -> str:
        return money_format(amount=self.amount_paid, currency=self.currency)

    @property
    def amount_refunded_display(self) -> str:
        return money_format(amount=self.amount_refunded, currency=self.currency)


class CheckoutAttempt(models.Model):
    """One Stripe Checkout Session opened for a payment. An open one is reused while it is
    valid, so a patient who clicks "Pay" twice (or in two tabs) cannot pay twice."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETE = "complete", "Completed"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="attempts")
    session_id = models.CharField(max_length=255, unique=True)
    url = models.URLField(max_length=2000)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
