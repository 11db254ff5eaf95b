"""Forms for an institution's look, texts and website embedding: the same ones in the
onboarding wizard and in the admin's settings pages, so the rules are the same."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings

from branding.colours import contrast_ratio
from branding.models import Brand, BrandTranslation
from branding.sanitise import institution_html_clean, institution_html_has_active_content
from branding.services import LOGO_MAX_BYTES, LOGO_TOO_LARGE, LogoRejected, logo_reencode

# WCAG 2.1 AA for normal text. Both colours carry white text (header, buttons) and both are
# used as text or focus outlines on the white page, so both must reach it against white.
AA_CONTRAST = 4.5
COLOUR_TOO_LIGHT = (
    "This colour is too light: white text on it and text in it on a white page need a contrast "
    "of at least 4.5:1 (WCAG AA), and it has {ratio:.1f}:1. Choose a darker shade."
)
COLOUR_NOT_HEX = (
    "Write the colour as # and six hexadecimal digits (0-9 and a-f), for example #1f4e79, "
    "or pick it with the colour square."
)
LOGO_KEPT_LOST = "The logo chosen before could not be kept. Please choose the file again."
TEXT_HAS_CODE = (
    "Texts may not contain scripts, styles, images, forms or event handlers. Please remove them "
    "(allowed: paragraphs, headings, lists, bold, italic and links)."
)
ORIGIN_INVALID = "“{value}” is not a website origin. Write it like https://www.hospital.org (no path)."
TOO_MANY_ORIGINS = "At most 10 websites may embed your portal."


class PlainLabels:
    """Labels without Django's trailing colon (they read as questions and headings here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


_HEX_COLOUR = re.compile(r"#[0-9a-f]{6}")


class HexColourField(forms.CharField):
    """A colour typed as ``#RRGGBB`` (the ``#`` may be left out, any case), stored in lower case.
    The page puts a colour square beside the text box (look_form.html), and each follows the
    other; without scripts the text box alone works."""

    default_error_messages = {"invalid": COLOUR_NOT_HEX}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            max_length=7,
            error_messages={"max_length": COLOUR_NOT_HEX},
            widget=forms.TextInput(
                attrs={
                    "class": "colour-input",
                    "pattern": "#?[0-9a-fA-F]{6}",
                    "spellcheck": "false",
                    "autocomplete": "off",
                    "autocapitalize": "off",
                    "size": 8,
                }
            ),
            **kwargs,
        )

    def to_python(self, value: Any) -> str:
        text = str(super().to_python(value)).strip().lower()
        if text and not text.startswith("#"):
            text = "#" + text
        if text and not _HEX_COLOUR.fullmatch(text):
            raise forms.ValidationError(COLOUR_NOT_HEX, code="invalid")
        return text


def _colour_field(label: str, help_text: str) -> HexColourField:
    return HexColourField(label=label, help_text=help_text)


class BrandLookForm(PlainLabels, forms.ModelForm):
    primary_colour = _colour_field("Primary colour", "Header, links and main buttons.")
    accent_colour = _colour_field("Accent colour", "Secondary buttons and highlights.")

    class Meta:
        model = Brand
        fields = [
            "primary_colour",
            "accent_colour",
            "tagline",
            "welcome_text",
            "support_email",
            "support_phone",
            "postal_address",
        ]
        labels = {
            "tagline": "Tagline",
            "welcome_text": "Welcome text for patients",
            "support_email": "Support email for patients",
            "support_phone": "Support phone for patients",
            "postal_address": "Postal address",
        }
        help_texts = {"postal_address": "Printed on every signed opinion, under your name."}
        widgets = {
            "welcome_text": forms.Textarea(attrs={"rows": 4}),
            "postal_address": forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"}),
        }

    def _clean_colour(self, name: str) -> str:
        value = str(self.cleaned_data[name]).lower()
        ratio = contrast_ratio(value, "#ffffff")
        if ratio < AA_CONTRAST:
            raise forms.ValidationError(COLOUR_TOO_LIGHT.format(ratio=ratio), code="contrast")
        return value

    def clean_primary_colour(self) -> str:
        return self._clean_colour("primary_colour")

    def clean_accent_colour(self) -> str:
        return self._clean_colour("accent_colour")


class LogoForm(PlainLabels, forms.Form):
    """The logo beside the look form. A browser cannot put a chosen file back into a file input,
    so when the page comes back with an error elsewhere (a colour), the logo already chosen is
    carried in ``logo_kept`` (the re-encoded PNG, base64) and shown in the preview: the admin
    does not lose it. The carried bytes are decoded and re-encoded again like any upload, so
    the field is no way around the logo rules."""

    logo = forms.FileField(
        label="Logo",
        required=False,
        help_text="PNG, JPEG or WebP, at most 2 MB and 4096 × 4096 pixels. We re-encode it as PNG.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    logo_kept = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("logo")
        data: bytes | None = None
        if upload:
            if upload.size > LOGO_MAX_BYTES:
                self.add_error("logo", LOGO_TOO_LARGE)
                return cleaned
            data = bytes(upload.read())
        elif cleaned.get("logo_kept"):
            try:
                data = base64.b64decode(str(cleaned["logo_kept"]), validate=True)
            except (binascii.Error, ValueError):
                self.add_error("logo", LOGO_KEPT_LOST)
                return cleaned
        if data is not None:
            try:
                data = logo_reencode(data=data)
            except LogoRejected as refusal:
                self.add_error("logo", str(refusal))
                return cleaned
        cleaned["logo"] = data
        return cleaned

    @property
    def kept_logo(self) -> str:
        """The chosen logo as base64 PNG, to carry into the next attempt ("" if none)."""
        if not self.is_bound or not self.is_valid() or not self.cleaned_data.get("logo"):
            return ""
        return base64.b64encode(self.cleaned_data["logo"]).decode("ascii")


class _SanitisedTexts:
    """The legal texts' cleaning: active content refused with a message, the rest sanitised."""

    cleaned_data: dict[str, Any]

    def _clean_text(self, name: str) -> str:
        value = str(self.cleaned_data.get(name) or "")
        if institution_html_has_active_content(value):
            raise forms.ValidationError(TEXT_HAS_CODE, code="active_content")
        return institution_html_clean(value)

    def clean_consent_text(self) -> str:
        return self._clean_text("consent_text")

    def clean_terms_text(self) -> str:
        return self._clean_text("terms_text")

    def clean_privacy_text(self) -> str:
        return self._clean_text("privacy_text")


_TEXT_LABELS = {
    "welcome_text": "Welcome text for patients",
    "consent_text": "Consent patients give before uploading",
    "terms_text": "Terms of service",
    "privacy_text": "Privacy notice",
}
_TEXT_HELP = {"consent_text": "Plain text, or simple HTML: paragraphs, headings, lists, bold, italic, links."}


class BrandTextsForm(PlainLabels, _SanitisedTexts, forms.ModelForm):
    class Meta:
        model = Brand
        fields = ["consent_text", "terms_text", "privacy_text"]
        labels = _TEXT_LABELS
        help_texts = _TEXT_HELP
        widgets = {name: forms.Textarea(attrs={"rows": 6}) for name in fields}


class BrandTranslationForm(PlainLabels, _SanitisedTexts, forms.ModelForm):
    """The institution's texts in one of its other languages (each may be left empty: patients
    then read the text in the default language)."""

    class Meta:
        model = BrandTranslation
        fields = ["welcome_text", "consent_text", "terms_text", "privacy_text"]
        labels = _TEXT_LABELS
        help_texts = _TEXT_HELP
        widgets = {name: forms.Textarea(attrs={"rows": 6}) for name in fields}


LANGUAGES_NONE = "Choose at least one language for your portal."
DEFAULT_NOT_OFFERED = "The main language must be one of the languages your portal offers."


class BrandLanguagesForm(PlainLabels, forms.Form):
    languages = forms.MultipleChoiceField(
        label="Languages your patient portal offers",
        choices=settings.LANGUAGES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": LANGUAGES_NONE},
        help_text="Patients read the portal, its emails and the opinion's PDF in one of these: the one "
        "they choose, else their browser's.",
    )
    default_language = forms.ChoiceField(
        label="Main language",
        choices=settings.LANGUAGES,
        help_text="Your texts on the Texts page are written in it, and patients read them in it "
        "when you have not written them in their language. It is also used when a patient's "
        "browser asks for none of your languages.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        languages = cleaned.get("languages") or []
        if languages and cleaned.get("default_language") not in languages:
            self.add_error("default_language", DEFAULT_NOT_OFFERED)
        return cleaned


_ORIGIN_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def origin_normalise(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case, or None if ``value`` is not such an origin."""
    value = value.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not _ORIGIN_HOST.match(host):
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


class EmbedOriginsForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Brand
        fields = ["embed_origins"]
        labels = {"embed_origins": "Websites allowed to embed your portal"}
        help_texts = {"embed_origins": "One per line, e.g. https://www.hospital.org"}
        widgets = {"embed_origins": forms.Textarea(attrs={"rows": 3})}

    def clean_embed_origins(self) -> str:
        origins: list[str] = []
        for line in str(self.cleaned_data.get("embed_origins") or "").splitlines():
            if not line.strip():
                continue
            origin = origin_normalise(line)
            if origin is None:
                raise forms.ValidationError(ORIGIN_INVALID.format(value=line.strip()[:80]))
            if origin not in origins:
                origins.append(origin)
        if len(origins) > 10:
            raise forms.ValidationError(TOO_MANY_ORIGINS)
        return "\n".join(origins)


def brand_form_values(form: forms.ModelForm[Brand]) -> dict[str, Any]:
    """The validated values of one of the forms above (its fields are Brand fields)."""
    return {name: form.cleaned_data[name] for name in form._meta.fields or ()}
