"""Changing an institution's look."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from django.db import transaction
from PIL import Image, UnidentifiedImageError

from branding.models import Brand, BrandTranslation, LegalTextVersion
from storage.tenant import tenant_storage

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_PIXELS = 4096 * 4096
LOGO_SIDE = 512
LOGO_FORMATS = {"PNG", "JPEG", "WEBP"}
FAVICON_SIDE = 64
LEGAL_TEXT_KINDS = tuple(LegalTextVersion.Kind.values)

LOGO_TOO_LARGE = "The logo file is larger than 2 MB. Please choose a smaller image."
LOGO_NOT_AN_IMAGE = "The logo must be a PNG, JPEG or WebP image."
LOGO_TOO_MANY_PIXELS = "The logo has too many pixels (at most 4096 × 4096)."


class LogoRejected(ValueError):
    pass


def logo_reencode(*, data: bytes) -> bytes:
    """Decode an uploaded logo and re-encode it as a PNG of at most 512×512.

    Re-encoding means only pixels we decoded ourselves are ever served: a file that merely
    claims to be an image (HTML, a script, a polyglot) is refused, and metadata is dropped.
    """
    if len(data) > LOGO_MAX_BYTES:
        raise LogoRejected(LOGO_TOO_LARGE)
    try:
        # Image.open reads only the header: the pixel count is checked before any decoding,
        # so a decompression bomb (a tiny file declaring a huge image) is refused cheaply.
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in LOGO_FORMATS:
                raise LogoRejected(LOGO_NOT_AN_IMAGE)
            if probe.width * probe.height > LOGO_MAX_PIXELS:
                raise LogoRejected(LOGO_TOO_MANY_PIXELS)
            probe.load()
            image = probe.convert("RGBA")
    except LogoRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise LogoRejected(LOGO_TOO_MANY_PIXELS) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise LogoRejected(LOGO_NOT_AN_IMAGE) from exc
    image.thumbnail((LOGO_SIDE, LOGO_SIDE))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# Fields an admin may change through the look, texts and website forms (all validated there).
BRAND_EDITABLE_FIELDS = frozenset(
    {
        "primary_colour", "accent_colour", "tagline", "welcome_text", "support_email", "support_phone",
        "postal_address",
        "consent_text", "terms_text", "privacy_text", "embed_origins",
    }
)  # fmt: skip


def brand_update(*, brand: Brand, values: dict[str, Any]) -> Brand:
    """Precondition: ``values`` passed one of branding.forms' forms."""
    unknown = set(values) - BRAND_EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    for name, value in values.items():
        setattr(brand, name, value)
    brand.full_clean(exclude=["institution"])
    with transaction.atomic():
        brand.save(update_fields=sorted(values))
        for kind in LEGAL_TEXT_KINDS:
            if f"{kind}_text" in values:
                legal_text_version_current(brand=brand, kind=kind, language=brand.default_language)
    return brand


BRAND_TRANSLATED_FIELDS = ("welcome_text", "consent_text", "terms_text", "privacy_text")


def brand_languages_set(*, brand: Brand, languages: list[str], default_language: str) -> Brand:
    """Precondition: ``languages`` (at least one) and ``default_language`` (one of them) passed
    ``branding.forms.BrandLanguagesForm``. The texts written so far stay as they are: the
    Brand's own are read as written in the new default language."""
    if not languages or default_language not in languages:
        raise ValueError("the default language must be one of the languages offered")
    brand.languages = ",".join(languages)
    brand.default_language = default_language
    brand.save(update_fields=["languages", "default_language"])
    return brand


def brand_translation_save(*, brand: Brand, language: str, values: dict[str, str]) -> BrandTranslation:
    """Save the institution's texts written in ``language`` (not its default one), and record
    a version of each legal text as patients reading ``language`` now see it.

    Precondition: ``values`` passed ``branding.forms.BrandTranslationForm`` (sanitised)."""
    if language == brand.default_language or language not in brand.language_list:
        raise ValueError(f"{language!r} is not one of the other languages offered")
    if set(values) - set(BRAND_TRANSLATED_FIELDS):
        raise ValueError(f"not translatable: {sorted(set(values) - set(BRAND_TRANSLATED_FIELDS))}")
    with transaction.atomic():
        translated, _ = BrandTranslation.objects.update_or_create(
            institution_id=brand.institution_id, language=language, defaults=values
        )
        brand.__dict__.pop("_translations", None)
        for kind in LEGAL_TEXT_KINDS:
            legal_text_version_current(brand=brand, kind=kind, language=language)
    return translated


def legal_text_version_current(*, brand: Brand, kind: str, language: str | None = None) -> LegalTextVersion:
    """The version row of the ``kind`` text a patient reading ``language`` (default: the active
    one) sees: the institution's text in that language, else in its default language
    (``Brand.text_in``); the row names the language it is written in. It is written if the text
    changed since the newest version of that language (or has none yet: texts saved before
    versions were kept). Versions are numbered per institution, kind and language under a lock
    of the brand's row, so two saves racing each other cannot take the same number. An empty
    text is a version too: the portal then shows its built-in wording."""
    if kind not in LEGAL_TEXT_KINDS:
        raise ValueError(f"unknown legal text {kind!r}")
    language, text = brand.text_in(kind, language)
    digest = hashlib.sha256(text.encode()).hexdigest()
    versions = LegalTextVersion.objects.filter(
        institution_id=brand.institution_id, kind=kind, language=language
    )
    latest = versions.order_by("-version").first()
    if latest is not None and latest.sha256 == digest:
        return latest
    with transaction.atomic():
        Brand.objects.select_for_update().filter(pk=brand.pk).first()
        latest = versions.order_by("-version").first()
        if latest is not None and latest.sha256 == digest:
            return latest
        return LegalTextVersion.objects.create(
            institution_id=brand.institution_id,
            kind=kind,
            language=language,
            version=(latest.version + 1) if latest else 1,
            sha256=digest,
            text=text,
        )


def brand_logo_set(*, brand: Brand, data: bytes) -> Brand:
    """Re-encode and store the logo. Nothing is written if the image is refused."""
    png = logo_reencode(data=data)
    files = tenant_storage(brand.institution.schema_name)
    key = "branding/logo.png"
    files.save(key, io.BytesIO(png), len(png))
    with Image.open(io.BytesIO(png)) as stored:
        width, height = stored.size
    with transaction.atomic():
        brand.logo_key = key
        brand.logo_version += 1
        brand.logo_width, brand.logo_height = width, height
        brand.save(update_fields=["logo_key", "logo_version", "logo_width", "logo_height"])
    return brand


def brand_logo_measure(*, brand: Brand) -> Brand:
    """Record the pixel size of a logo stored before sizes were kept (once; a missing or
    unreadable file leaves the size unknown, and the logo is then shown square)."""
    if not brand.logo_key or (brand.logo_width and brand.logo_height):
        return brand
    try:
        data = tenant_storage(brand.institution.schema_name).read_bytes(brand.logo_key)
        with Image.open(io.BytesIO(data)) as stored:
            brand.logo_width, brand.logo_height = stored.size
    except (OSError, UnidentifiedImageError):
        return brand
    Brand.objects.filter(pk=brand.pk).update(logo_width=brand.logo_width, logo_height=brand.logo_height)
    return brand


def favicon_render(*, logo_png: bytes) -> bytes:
    """A square PNG icon from the logo: the whole logo, centred on a transparent square
    (never cropped or squashed)."""
    with Image.open(io.BytesIO(logo_png)) as logo:
        image = logo.convert("RGBA")
    image.thumbnail((FAVICON_SIDE, FAVICON_SIDE), Image.Resampling.LANCZOS)
    square = Image.new("RGBA", (FAVICON_SIDE, FAVICON_SIDE), (0, 0, 0, 0))
    square.paste(image, ((FAVICON_SIDE - image.width) // 2, (FAVICON_SIDE - image.height) // 2))
    out = io.BytesIO()
    square.save(out, format="PNG", optimize=True)
    return out.getvalue()


def brand_favicon_key(*, brand: Brand) -> str | None:
    """Storage key of the favicon of the current logo, made from it on first use and kept (one
    file per logo version, so a new logo gets a new icon). None without a logo."""
    if not brand.logo_key:
        return None
    files = tenant_storage(brand.institution.schema_name)
    key = f"branding/favicon-{brand.logo_version}.png"
    if not files.exists(key):
        try:
            icon = favicon_render(logo_png=files.read_bytes(brand.logo_key))
        except (OSError, UnidentifiedImageError):
            return None
        files.save(key, io.BytesIO(icon), len(icon))
    return key


def brand_look_save(*, brand: Brand, values: dict[str, Any], logo: bytes | None) -> Brand:
    """Save the look (colours) and, if one was sent, the logo: the logo is re-encoded first, so
    a refused logo (``LogoRejected``) leaves the colours unsaved too.

    Precondition: ``values`` passed ``branding.forms.BrandLookForm``. Shared by the onboarding
    wizard and the institution's settings: same rules in both."""
    if logo:
        brand_logo_set(brand=brand, data=logo)
    return brand_update(brand=brand, values=values)
