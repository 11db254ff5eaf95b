"""An institution's look, texts and website embedding. Lives in the public schema beside the
institution, because the platform shows it too (suspended pages, emails sent from background
work, the onboarding wizard before the institution's schema exists); it holds no patient data."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils.safestring import SafeString, mark_safe

from branding.sanitise import institution_text_html
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
    # Pixel size of the stored logo (0: not measured yet, a logo stored before these existed):
    # emails and the PDF size the logo from these, keeping its aspect ratio.
    logo_width = models.PositiveIntegerField(default=0)
    logo_height = models.PositiveIntegerField(default=0)
    tagline = models.CharField(max_length=200, blank=True)
    welcome_text = models.TextField(blank=True)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=40, blank=True)
    # Printed on signed opinions, so a doctor elsewhere knows where the opinion comes from.
    postal_address = models.TextField(max_length=500, blank=True)
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

    def logo_box(self, *, height: int, max_width: int) -> tuple[int, int]:
        """(width, height) to show the logo ``height`` high (narrower if it would be wider
        than ``max_width``), keeping its aspect ratio; a square when its size is unknown."""
        if not (self.logo_width and self.logo_height):
            return height, height
        width = round(height * self.logo_width / self.logo_height)
        if width > max_width:
            return max_width, max(1, round(max_width * self.logo_height / self.logo_width))
        return max(1, width), height

    @property
    def consent_html(self) -> SafeString:
        return mark_safe(institution_text_html(self.consent_text))  # noqa: S308 (sanitised by nh3)

    @property
    def terms_html(self) -> SafeString:
        return mark_safe(institution_text_html(self.terms_text))  # noqa: S308 (sanitised by nh3)

    @property
    def privacy_html(self) -> SafeString:
        return mark_safe(institution_text_html(self.privacy_text))  # noqa: S308 (sanitised by nh3)


class LegalTextVersion(models.Model):
    """One version of an institution's consent, terms or privacy text, as patients saw it.

    A new row is written whenever the text changes (``branding.services.brand_update``);
    rows are never changed. A case records the version number and hash of each text its
    patient accepted (``intake.models.CaseConsent``), so what they agreed to can be shown
    later word for word."""

    class Kind(models.TextChoices):
        CONSENT = "consent", "Consent"
        TERMS = "terms", "Terms of service"
        PRIVACY = "privacy", "Privacy notice"

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="legal_text_versions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    version = models.PositiveIntegerField()
    # SHA-256 of ``text`` (UTF-8), the text as stored (sanitised when shown).
    sha256 = models.CharField(max_length=64)
    text = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["institution", "kind", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "kind", "version"], name="one_legal_text_version")
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version}"
