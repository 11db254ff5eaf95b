"""Changing an institution's look."""

from __future__ import annotations

import io

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
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in LOGO_FORMATS:
                raise LogoRejected(LOGO_NOT_AN_IMAGE)
            if probe.width * probe.height > LOGO_MAX_PIXELS:
                raise LogoRejected(LOGO_TOO_MANY_PIXELS)
            probe.load()
            image = probe.convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise LogoRejected(LOGO_NOT_AN_IMAGE) from exc
    image.thumbnail((LOGO_SIDE, LOGO_SIDE))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def brand_logo_set(*, brand: Brand, data: bytes) -> Brand:
    png = logo_reencode(data=data)
    files = tenant_storage(brand.institution.schema_name)
    key = "branding/logo.png"
    files.save(key, io.BytesIO(png), len(png))
    with transaction.atomic():
        brand.logo_key = key
        brand.logo_version += 1
        brand.save(update_fields=["logo_key", "logo_version"])
    return brand
