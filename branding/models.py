"""An institution's look, texts and website embedding. Lives in the public schema beside the
institution, because the platform shows it too (suspended pages, emails sent from background
work, the onboarding wizard before the institution's schema exists); it holds no patient data."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils.safestring import SafeString, mark_safe

from branding.sanitise import institution_html_clean
from tenants.models import Institution

hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a colour as #RRGGBB.")

DEFAULT_PRIMARY = "#1f4e79"
DEFAULT_ACCENT = "#a84d0b"


class Brand(models.Model):
    institution = models.OneToOneField(Institution, on_delete=models.CASCADE, related_name="brand")
    primary_colour = models.CharField(max_length=7, default=DEFAULT_PRIMARY, validators=[hex_colour])
    accent_colour = models.CharField(max_length=7, default=DEFAULT_ACCENT, validators=[hex_colour])
    # Storage key (under the institution's schema) of the re-encoded PNG logo, if any.
    logo_key = models.CharField(max_length=200, blank=True)
    logo_version = models.PositiveIntegerField(default=0)
    tagline = models.CharField(max_length=200, blank=True)
    welcome_text = models.TextField(blank=True)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=40, blank=True)
    # The institution's own legal texts: a small HTML subset, sanitised with nh3 when saved
    # and again when shown (branding.sanitise), so no script or style ever reaches a page.
    consent_text = models.TextField(blank=True)
    terms_text = models.TextField(blank=True)
    privacy_text = models.TextField(blank=True)
    # Origins (scheme://host[:port], one per line) whose pages may frame the patient portal.
    embed_origins = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Brand of {self.institution}"

    @property
    def embed_origin_list(self) -> list[str]:
        return [line.strip() for line in self.embed_origins.splitlines() if line.strip()]

    @property
    def consent_html(self) -> SafeString:
        return mark_safe(institution_html_clean(self.consent_text))  # noqa: S308 (sanitised by nh3)

    @property
    def terms_html(self) -> SafeString:
        return mark_safe(institution_html_clean(self.terms_text))  # noqa: S308 (sanitised by nh3)

    @property
    def privacy_html(self) -> SafeString:
        return mark_safe(institution_html_clean(self.privacy_text))  # noqa: S308 (sanitised by nh3)
