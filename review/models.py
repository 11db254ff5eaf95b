"""Review workspace records. The audit log lives here: append-only, in the institution's schema."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what to which patient data, when, from where. Never updated or deleted.

    ``action`` is a dotted verb ("case.view", "dicomweb.instances", "opinion.sign");
    ``detail`` holds ids and counts only (never names or free text).
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    case = models.ForeignKey("intake.Case", null=True, blank=True, on_delete=models.SET_NULL)
    object_ref = models.CharField(max_length=128, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    allowed = models.BooleanField(default=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
