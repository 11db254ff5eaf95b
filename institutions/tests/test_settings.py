"""The institution's administrator changes everything from the wizard later, with the same
rules; nobody else reaches the settings."""

from __future__ import annotations

import base64
import io
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils.html import escape
from django_tenants.utils import schema_context
from PIL import Image

from branding.forms import COLOUR_NOT_HEX, COLOUR_TOO_LIGHT, TEXT_HAS_CODE
from branding.models import Brand
from branding.services import LOGO_NOT_AN_IMAGE
from institutions.tests.helpers import png_bytes
from storage.tenant import tenant_storage
from tenants.models import Institution, InstitutionSettings, Invitation
from tests.staff import staff_force_login

SETTINGS_PAGES = ["/settings/", "/settings/look/", "/settings/texts/", "/settings/service/",
                  "/settings/team/", "/settings/website/", "/settings/domains/"]  # fmt: skip


def _admin(host: str = "neuro.localhost", email: str = "admin@neuro.example.com") -> Client:
    client = Client(HTTP_HOST=host)
    staff_force_login(client, email)
    return client


def test_it_shows_every_settings_page_to_the_admin(neuro: Institution) -> None:
    admin = _admin()
    for path in SETTINGS_PAGES:
        assert admin.get(path).status_code == 200, path


def test_it_refuses_coordinators_reviewers_and_patients(neuro: Institution) -> None:
    for role in ("coordinator", "reviewer1"):
        client = _admin(email=f"{role}@neuro.example.com")
        for path in SETTINGS_PAGES:
            assert client.get(path).status_code == 403, (role, path)
    patient = Client(HTTP_HOST="neuro.localhost")
    patient.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": "secondread-demo"})
    for path in SETTINGS_PAGES:
        assert patient.get(path).status_code == 403, path


def test_it_sends_a_logged_out_visitor_to_sign_in(neuro: Institution) -> None:
    response = Client(HTTP_HOST="neuro.localhost").get("/settings/look/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_refuses_another_institutions_admin(neuro: Institution, cancer: Institution) -> None:
    # The neuro admin's session cookie means nothing on the cancer centre's domain.
    admin = _admin()
    cookie = admin.cookies["sessionid"].value
    other = Client(HTTP_HOST="cancer.localhost")
    other.cookies["sessionid"] = cookie
    response = other.get("/settings/look/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = other.post("/settings/look/", {"primary_colour": "#000000"})
    assert response.status_code in (302, 403)
    assert Brand.objects.get(institution=cancer).primary_colour == "#0b5e55"


def test_it_changes_the_look_with_the_wizards_rules(neuro: Institution) -> None:
    admin = _admin()
    values = {"primary_colour": "#ffcc00", "accent_colour": "#0f7b6c", "tagline": "", "welcome_text": "Hi",
              "support_email": "", "support_phone": ""}  # fmt: skip
    page = admin.post("/settings/look/", values).content.decode()
    assert COLOUR_TOO_LIGHT.split(":")[0] in page
    fake = SimpleUploadedFile("logo.png", b"<svg onload=alert(1)>", content_type="image/png")
    page = admin.post(
        "/settings/look/", {**values, "primary_colour": "#123456", "logo": fake}
    ).content.decode()
    assert LOGO_NOT_AN_IMAGE in page
    assert Brand.objects.get(institution=neuro).primary_colour == "#4b2e83"
    logo = SimpleUploadedFile("logo.webp", png_bytes(), content_type="image/png")
    response = admin.post("/settings/look/", {**values, "primary_colour": "#123456", "logo": logo})
    assert response.status_code == 302
    assert "--brand-primary:#123456" in Client(HTTP_HOST="neuro.localhost").get("/").content.decode()


LOOK = {"primary_colour": "#123456", "accent_colour": "#0f7b6c", "tagline": "", "welcome_text": "Hi",
        "support_email": "", "support_phone": ""}  # fmt: skip


def test_it_keeps_the_chosen_logo_through_a_colour_error(neuro: Institution) -> None:
    admin = _admin()
    version = Brand.objects.get(institution=neuro).logo_version
    logo = SimpleUploadedFile("logo.png", png_bytes(colour="#aa2200"), content_type="image/png")
    page = admin.post("/settings/look/", {**LOOK, "primary_colour": "#ffcc00", "logo": logo}).content.decode()
    assert COLOUR_TOO_LIGHT.split(":")[0] in page
    # The chosen logo is in the preview and in the form, though nothing was saved yet.
    kept = re.search(r'<input type="hidden" name="logo_kept" value="([^"]+)">', page)
    assert kept and f'src="data:image/png;base64,{kept.group(1)}"' in page
    assert Brand.objects.get(institution=neuro).logo_version == version
    # The corrected colour is sent without choosing the file again: the logo is saved with it.
    response = admin.post("/settings/look/", {**LOOK, "logo_kept": kept.group(1)})
    assert response.status_code == 302
    brand = Brand.objects.get(institution=neuro)
    assert brand.primary_colour == "#123456" and brand.logo_version == version + 1
    with schema_context(neuro.schema_name):
        stored = tenant_storage().read_bytes(brand.logo_key)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.convert("RGB").getpixel((10, 10)) == (0xAA, 0x22, 0x00)


def test_it_decodes_a_kept_logo_like_any_upload(neuro: Institution) -> None:
    admin = _admin()
    version = Brand.objects.get(institution=neuro).logo_version
    forged = base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
    page = admin.post("/settings/look/", {**LOOK, "logo_kept": forged}).content.decode()
    assert LOGO_NOT_AN_IMAGE in page
    brand = Brand.objects.get(institution=neuro)
    assert brand.logo_version == version and brand.primary_colour == "#4b2e83"  # nothing saved half-way


def test_it_takes_colours_typed_as_hex(neuro: Institution) -> None:
    admin = _admin()
    page = admin.get("/settings/look/").content.decode()
    # A text box that takes #RRGGBB, and a colour square beside it.
    assert re.search(r'<input type="text" name="primary_colour" value="#4b2e83"[^>]*pattern=', page)
    assert 'data-colour-picker-for="primary_colour"' in page
    for typed in ("#12345G", "#1234", "blue", "#1234567"):
        page = admin.post("/settings/look/", {**LOOK, "primary_colour": typed}).content.decode()
        assert escape(COLOUR_NOT_HEX) in page, typed
        assert Brand.objects.get(institution=neuro).primary_colour == "#4b2e83"
    assert admin.post("/settings/look/", {**LOOK, "primary_colour": " 0B4F6C "}).status_code == 302
    assert Brand.objects.get(institution=neuro).primary_colour == "#0b4f6c"


def test_it_changes_texts_fee_and_service(neuro: Institution) -> None:
    admin = _admin()
    page = admin.post(
        "/settings/texts/",
        {"consent_text": '<a href="javascript:alert(1)">x</a>', "terms_text": "", "privacy_text": ""},
    ).content.decode()
    assert TEXT_HAS_CODE in page
    admin.post(
        "/settings/texts/",
        {"consent_text": "", "terms_text": "<h2>Terms</h2><p>Be kind.</p>", "privacy_text": ""},
    )
    assert (
        "<h2>Terms</h2><p>Be kind.</p>"
        in Client(HTTP_HOST="neuro.localhost").get("/brand/texts/terms/").content.decode()
    )
    admin.post(
        "/settings/service/",
        {"fee-fee_enabled": "on", "fee-fee_amount": "100", "fee-fee_currency": "usd",
         "fee-fee_payment": "waivers",
         "service-turnaround_business_days": "9", "service-specialties": "Neurosurgery"},
    )  # fmt: skip
    row = InstitutionSettings.objects.get(institution=neuro)
    assert (row.fee_enabled, row.fee_amount_minor, row.turnaround_business_days) == (True, 10000, 9)


def test_it_invites_staff_and_refuses_a_duplicate(neuro: Institution) -> None:
    admin = _admin()
    form = {"action": "invite", "email": "new.reviewer@neuro.example.com", "is_reviewer": "on"}
    admin.post("/settings/team/", form)
    assert Invitation.objects.filter(institution=neuro, email="new.reviewer@neuro.example.com").exists()
    page = admin.post("/settings/team/", form).content.decode()
    assert "already has an open invitation" in page
    page = admin.post("/settings/team/", {**form, "email": "reviewer1@neuro.example.com"}).content.decode()
    assert "already on your team" in page
    page = admin.post(
        "/settings/team/", {"action": "invite", "email": "x@neuro.example.com"}
    ).content.decode()
    assert "Choose at least one role" in page


def test_it_shows_the_settings_link_to_the_admin_only(neuro: Institution) -> None:
    link = '<a href="/settings/">Settings</a>'
    assert link in _admin().get("/brand/texts/terms/").content.decode()
    coordinator = _admin(email="coordinator@neuro.example.com")
    assert link not in coordinator.get("/brand/texts/terms/").content.decode()


def test_it_sets_the_time_zone_and_refuses_an_unknown_one(neuro: Institution) -> None:
    from tenants.timezones import TIME_ZONE_UNKNOWN

    admin = _admin()
    service = {"fee-fee_amount": "0", "fee-fee_currency": "usd", "fee-fee_payment": "waivers",
               "service-turnaround_business_days": "9", "service-specialties": ""}  # fmt: skip
    page = admin.post("/settings/service/", {**service, "service-time_zone": "Mars/Olympus_Mons"})
    assert TIME_ZONE_UNKNOWN in page.content.decode()
    neuro.refresh_from_db()
    assert neuro.time_zone == "UTC"  # nothing half-saved
    assert InstitutionSettings.objects.get(institution=neuro).turnaround_business_days != 9
    admin.post("/settings/service/", {**service, "service-time_zone": "Europe/Paris"})
    neuro.refresh_from_db()
    assert neuro.time_zone == "Europe/Paris"
    assert 'value="Europe/Paris" selected' in admin.get("/settings/service/").content.decode()
    # Nobody else changes it: a coordinator, or someone signed out.
    coordinator = _admin(email="coordinator@neuro.example.com")
    assert (
        coordinator.post("/settings/service/", {**service, "service-time_zone": "Asia/Tokyo"}).status_code
        == 403
    )
    Client(HTTP_HOST="neuro.localhost").post(
        "/settings/service/", {**service, "service-time_zone": "Asia/Tokyo"}
    )
    neuro.refresh_from_db()
    assert neuro.time_zone == "Europe/Paris"
