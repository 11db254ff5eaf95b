"""An institution's look. Lives in the public schema beside the institution, because the
platform shows it too (suspended pages, emails sent from background work, the operator
console); it holds no patient data."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from tenants.models import Institution

hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a colour as #RRGGBB.")


class Brand(models.Model):
    institution = models.OneToOneField(Institution, on_delete=models.CASCADE, related_name="brand")
    primary_colour = models.CharField(max_length=7, default="#1f4e79", validators=[hex_colour])
    accent_colour = models.CharField(max_length=7, default="#c75b12", validators=[hex_colour])
    # Storage key (under the institution's schema) of the re-encoded PNG logo, if any.
    logo_key = models.CharField(max_length=200, blank=True)
    logo_version = models.PositiveIntegerField(default=0)
    tagline = models.CharField(max_length=200, blank=True)
    welcome_text = models.TextField(blank=True)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return f"Brand of {self.institution}"
