"""Puts the current institution's brand in every template as validated values.

Only values that passed the model's validators (``#RRGGBB`` colours) become CSS variables;
no user-supplied CSS or HTML reaches a page.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from branding.colours import readable_text_on
from branding.selectors import brand_for_institution

PLATFORM_PRIMARY = "#0b5cab"
PLATFORM_ACCENT = "#0f7b6c"


def branding(request: HttpRequest) -> dict[str, Any]:
    institution = getattr(request, "tenant", None)
    brand = None
    if institution is not None and institution.schema_name != "public":
        brand = brand_for_institution(institution=institution)
    primary = brand.primary_colour if brand else PLATFORM_PRIMARY
    accent = brand.accent_colour if brand else PLATFORM_ACCENT
    return {
        "institution": institution if brand else None,
        "brand": brand,
        # The languages the language switch offers: the institution's (accounts.language).
        "portal_languages": [(code, name) for code, name in settings.LANGUAGES if code in brand.language_list]
        if brand
        else [],
        "brand_css": {
            "primary": primary,
            "accent": accent,
            "on_primary": readable_text_on(primary),
            "on_accent": readable_text_on(accent),
        },
    }
