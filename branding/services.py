"""Changing an institution's look."""

from __future__ import annotations

import io
from typing import Any

from django.db import transaction
from PIL import Image, UnidentifiedImageError

from branding.models import Brand
from storage.tenant import tenant_storage

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_PIXELS = 4096 * 4096
LOGO_SIDE = 512
LOGO_FORMATS = {"PNG", "JPEG", "WEBP"}

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
    brand.save(update_fields=sorted(values))
    return brand


def brand_logo_set(*, brand: Brand, data: bytes) -> Brand:
    """Re-encode and store the logo. Nothing is written if the image is refused."""
    png = logo_reencode(data=data)
    files = tenant_storage(brand.institution.schema_name)
    key = "branding/logo.png"
    files.save(key, io.BytesIO(png), len(png))
    with transaction.atomic():
        brand.logo_key = key
        brand.logo_version += 1
        brand.save(update_fields=["logo_key", "logo_version"])
    return brand


def brand_look_save(*, brand: Brand, values: dict[str, Any], logo: bytes | None) -> Brand:
    """Save the look (colours) and, if one was sent, the logo: the logo is re-encoded first, so
    a refused logo (``LogoRejected``) leaves the colours unsaved too.

    Precondition: ``values`` passed ``branding.forms.BrandLookForm``. Shared by the onboarding
    wizard and the institution's settings: same rules in both."""
    if logo:
        brand_logo_set(brand=brand, data=logo)
    return brand_update(brand=brand, values=values)
