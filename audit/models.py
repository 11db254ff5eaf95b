"""The append-only audit log of access to patient data, in each institution's schema.

The bottom of the import layers: every app may record here, this app imports none of them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Who did what to which patient data, when, from where. Never updated or deleted.

    ``action`` is a dotted verb ("case.view", "dicomweb.instances", "opinion.sign");
    ``detail`` holds ids and counts only (never names or free text).

    The table refuses UPDATE and DELETE (a trigger, review migration 0003: the table was review's),
    so the foreign keys are plain columns without database constraints: deleting a user or a case
    must leave its audit trail exactly as it was, not null it out.
    """

    # Set before the row is written (it is part of the row's hash), never after.
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    case = models.ForeignKey(
        "intake.Case",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    object_ref = models.CharField(max_length=128, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    allowed = models.BooleanField(default=True)
    detail = models.JSONField(default=dict, blank=True)
    # The hash chain (audit.services): ``seq`` numbers the chained rows 1, 2, 3... and
    # ``row_hash`` = sha256(previous row_hash + this row's content). Rows written before the
    # chain existed have neither. Any change, removal or insertion breaks the chain, which
    # ``manage.py audit_verify`` recomputes.
    seq = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    row_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]


class AuditChainHead(models.Model):
    """One row per schema: the last chained event. Locked (SELECT FOR UPDATE) by every append,
    so appends are numbered one after another; it also shows if the newest rows were removed."""

    seq = models.PositiveBigIntegerField(default=0)
    row_hash = models.CharField(max_length=64, blank=True)
