"""The append-only audit log of access to patient data, in each institution's schema.

The bottom of the import layers: every app may record here, this app imports none of them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what to which patient data, when, from where. Never updated or deleted.

    ``action`` is a dotted verb ("case.view", "dicomweb.instances", "opinion.sign");
    ``detail`` holds ids and counts only (never names or free text).

    The table refuses UPDATE and DELETE (a trigger, review migration 0003: the table was review's),
    so the foreign keys are plain columns without database constraints: deleting a user or a case
    must leave its audit trail exactly as it was, not null it out.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
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

    class Meta:
        ordering = ["-at", "-id"]
