"""An institution's look, texts and website embedding. Lives in the public schema beside the
institution, because the platform shows it too (suspended pages, emails sent from background
work, the onboarding wizard before the institution's schema exists); it holds no patient data."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import translation
from django.utils.html import format_html
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
    # The languages (codes of settings.LANGUAGES, comma-separated) the patient portal offers:
    # its language switch, the browser's choice and the emails keep to these
    # (accounts.language). The texts above are written in ``default_language``, which is also
    # what a patient reads when a text is not written in their language (BrandTranslation).
    languages = models.CharField(max_length=40, default="en,es")
    default_language = models.CharField(max_length=8, default="en")

    def __str__(self) -> str:
        return f"Brand of {self.institution}"

    @property
    def language_list(self) -> list[str]:
        """The offered languages, in settings.LANGUAGES' order (never empty)."""
        chosen = {code.strip() for code in self.languages.split(",")}
        offered = [code for code, _ in settings.LANGUAGES if code in chosen]
        return offered or [self.default_language]

    def text_in(self, kind: str, language: str | None = None) -> tuple[str, str]:
        """(language, text) of the ``kind`` text ("welcome", "consent", "terms", "privacy") a
        patient reading ``language`` (default: the active one) sees: the institution's own
        version in that language if it wrote one, else the text in its default language."""
        language = language or translation.get_language() or self.default_language
        if language != self.default_language and language in self.language_list:
            translated = self._translation(language)
            text = getattr(translated, f"{kind}_text", "") if translated else ""
            if text.strip():
                return language, text
        return self.default_language, getattr(self, f"{kind}_text")

    def _translation(self, language: str) -> BrandTranslation | None:
        cache: dict[str, BrandTranslation | None] = self.__dict__.setdefault("_translations", {})
        if language not in cache:
            cache[language] = BrandTranslation.objects.filter(
                institution_id=self.institution_id, language=language
            ).first()
        return cache[language]

    @property
    def welcome(self) -> str:
        """The portal's welcome text in the active language (plain text)."""
        return self.text_in("welcome")[1]

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

    # The legal texts as a patient reading the active language sees them.
    @property
    def consent_html(self) -> SafeString:
        return self._text_html("consent")

    @property
    def terms_html(self) -> SafeString:
        return self._text_html("terms")

    @property
    def privacy_html(self) -> SafeString:
        return self._text_html("privacy")

    def _text_html(self, kind: str) -> SafeString:
        """The sanitised text; one shown in another language than the page's (not written in
        the patient's) is marked with its own, so screen readers read it with the right voice."""
        language, text = self.text_in(kind)
        html = institution_text_html(text)
        if html and language != translation.get_language():
            html = format_html('<div lang="{}">{}</div>', language, mark_safe(html))  # noqa: S308 (sanitised by nh3)
        return mark_safe(html)  # noqa: S308 (sanitised by nh3)


class BrandTranslation(models.Model):
    """An institution's texts written in a language other than its default one. A text left
    empty here is shown in the default language (``Brand.text_in``). Belongs to the institution
    (as its brand does), so an institution's export and removal carry it."""

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="brand_translations")
    language = models.CharField(max_length=8)
    welcome_text = models.TextField(blank=True)
    # Sanitised like the Brand's own (branding.forms, branding.sanitise).
    consent_text = models.TextField(blank=True)
    terms_text = models.TextField(blank=True)
    privacy_text = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["institution", "language"], name="one_brand_translation")
        ]

    def __str__(self) -> str:
        return f"Texts of {self.institution} ({self.language})"


class LegalTextVersion(models.Model):
    """One version of an institution's consent, terms or privacy text, as patients saw it.

    A new row is written whenever the text changes (``branding.services.brand_update``);
    rows are never changed. A case records the version number and hash of each text its
    patient accepted (``intake.models.CaseConsent``), so what they agreed to can be shown
    later word for word. Each language's text has its own versions."""

    class Kind(models.TextChoices):
        CONSENT = "consent", "Consent"
        TERMS = "terms", "Terms of service"
        PRIVACY = "privacy", "Privacy notice"

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="legal_text_versions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The language the text is written in (versions are numbered per language).
    language = models.CharField(max_length=8, default="en")
    version = models.PositiveIntegerField()
    # SHA-256 of ``text`` (UTF-8), the text as stored (sanitised when shown).
    sha256 = models.CharField(max_length=64)
    text = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["institution", "kind", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "kind", "language", "version"],
                name="one_legal_text_version_per_language",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version} ({self.language})"
