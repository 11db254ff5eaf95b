"""A message waiting to leave (or that left) the database, in the schema of the change that
caused it: an institution's messages live in its schema, the platform's in the public one."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be delivered"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Not delivered"

    # What it is ("email", later "pacs_send", "webhook"): picks its deliverer.
    kind = models.CharField(max_length=40)
    # The same key enqueued twice is one message (a retried task, a webhook delivered twice).
    dedupe_key = models.CharField(max_length=200, unique=True)
    # What the deliverer needs. May hold patient data (an email's text): it stays in this schema.
    payload = models.JSONField()
    # What staff see in the list of failures: no patient data (e.g. an email's subject).
    summary = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When a pending message may be tried next (after a failure: the back-off).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Set while a worker delivers it, past the delivery's longest time (a lease): a worker that
    # dies mid-delivery leaves it to the sweep once this has passed.
    leased_until = models.DateTimeField(null=True, blank=True)
    # The last failure's kind (an exception class, an SMTP code), never its text.
    last_error = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx")]
