"""Stripe Connect records of the platform (public schema, no patient data).

Why here and not in the institution's schema: Stripe sends every Connect event to one platform
endpoint, naming only the connected account (``event.account``). To know which schema an event
belongs to, the account id must be looked up before any schema is chosen. The schema-level
payment records (``payments.Payment``) stay in each institution's schema.
"""

from __future__ import annotations

from django.db import models

from tenants.models import Institution


class StripeAccount(models.Model):
    """An institution's own Stripe account, connected through Stripe Connect (Standard).

    The platform keeps only the account id and the state Stripe reports; the institution's
    keys never reach us. A disconnected account keeps its row (``disconnected_at``) so late
    events and refunds of earlier payments can still be routed to the institution.
    """

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="stripe_accounts")
    account_id = models.CharField(max_length=255, unique=True)
    charges_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    connected_at = models.DateTimeField(auto_now_add=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # Unix time of the newest account event applied: an older event arriving late is ignored.
    last_event_created = models.BigIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-connected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution"],
                condition=models.Q(disconnected_at__isnull=True),
                name="one_connected_stripe_account_per_institution",
            )
        ]

    def __str__(self) -> str:
        return self.account_id

    @property
    def is_connected(self) -> bool:
        return self.disconnected_at is None

    @property
    def can_charge(self) -> bool:
        return self.is_connected and self.charges_enabled


class ProcessedEvent(models.Model):
    """A Stripe event id we have handled. Inserted in the same transaction as the event's
    effect, so an event delivered again (Stripe retries, replays) is recognised and skipped;
    two deliveries racing each other serialise on the unique index."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    account_id = models.CharField(max_length=255, blank=True)
    institution = models.ForeignKey(Institution, null=True, blank=True, on_delete=models.SET_NULL)
    outcome = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
