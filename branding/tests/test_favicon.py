"""Each institution's favicon is made from its own logo (issue 14, item 6): whole and square,
never squashed, stored once per logo version, linked from every page."""

from __future__ import annotations

import io

from django.conf import settings
from django.test import Client
from PIL import Image

from branding.models import Brand
from branding.services import brand_logo_set
from storage.tenant import tenant_storage
from tenants.models import Institution


def _png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def _icon(response: object) -> Image.Image:
    data = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return Image.open(io.BytesIO(data))


def test_it_makes_a_square_favicon_from_a_wide_logo(neuro: Institution, neuro_client: Client) -> None:
    brand = Brand.objects.get(institution=neuro)
    brand_logo_set(brand=brand, data=_png(400, 100, (200, 0, 0)))
    response = neuro_client.get("/brand/favicon.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "max-age" in response["Cache-Control"]
    icon = _icon(response).convert("RGBA")
    assert icon.size == (64, 64)
    assert icon.getpixel((32, 32)) == (200, 0, 0, 255)  # the logo, in the middle
    assert icon.getpixel((32, 2)) == (0, 0, 0, 0)  # transparent above it: padded, not stretched
    assert tenant_storage(neuro.schema_name).exists(f"branding/favicon-{brand.logo_version}.png")
    page = neuro_client.get("/").content.decode()
    assert f'<link rel="icon" type="image/png" href="/brand/favicon.png?v={brand.logo_version}">' in page


def test_it_gives_each_institution_its_own_favicon(
    neuro: Institution, cancer: Institution, neuro_client: Client, cancer_client: Client
) -> None:
    brand_logo_set(brand=Brand.objects.get(institution=neuro), data=_png(64, 64, (200, 0, 0)))
    brand_logo_set(brand=Brand.objects.get(institution=cancer), data=_png(64, 64, (0, 0, 200)))
    assert _icon(neuro_client.get("/brand/favicon.png")).convert("RGB").getpixel((32, 32)) == (200, 0, 0)
    assert _icon(cancer_client.get("/brand/favicon.png")).convert("RGB").getpixel((32, 32)) == (0, 0, 200)


def test_it_has_no_favicon_without_a_logo_or_an_institution(neuro: Institution, neuro_client: Client) -> None:
    Brand.objects.filter(institution=neuro).update(logo_key="")
    assert neuro_client.get("/brand/favicon.png").status_code == 404
    assert Client(HTTP_HOST=settings.PLATFORM_DOMAIN).get("/brand/favicon.png").status_code == 404
