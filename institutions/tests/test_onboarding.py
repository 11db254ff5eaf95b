"""The onboarding wizard on the platform domain: account, steps saved and resumable, clear
messages for bad input, and nothing stored half-way."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from branding.forms import COLOUR_TOO_LIGHT, TEXT_HAS_CODE
from branding.models import Brand
from branding.services import LOGO_NOT_AN_IMAGE, LOGO_TOO_MANY_PIXELS
from institutions.forms import FEE_AMOUNT_NEEDED
from institutions.onboarding import SIGN_IN_FAILED, VERIFY_LINK_INVALID, VERIFY_PASSWORD_WRONG
from institutions.tests.helpers import PASSWORD, applicant_sign_up, confirmation_path, png_bomb, png_bytes
from storage.tenant import tenant_storage
from tenants.models import Institution, InstitutionSettings, Onboarding
from tenants.subdomains import SUBDOMAIN_AVAILABLE, SUBDOMAIN_FORMAT, SUBDOMAIN_RESERVED, SUBDOMAIN_TAKEN

EMAIL = "ada@stmary.example.org"


@pytest.fixture
def applicant(platform_client: Client, django_capture_on_commit_callbacks: Any) -> Client:
    applicant_sign_up(platform_client, django_capture_on_commit_callbacks, email=EMAIL)
    return platform_client


@pytest.fixture
def drafted(applicant: Client) -> Client:
    response = applicant.post("/start/step/subdomain/", {"slug": "st-mary"})
    assert response.status_code == 302
    return applicant


def _draft_brand() -> Brand:
    return Brand.objects.get(institution__slug="st-mary")


def test_it_offers_sign_up_from_the_platform_home(platform_client: Client) -> None:
    page = platform_client.get("/").content.decode()
    assert "Start your institution" in page
    assert 'href="/start/"' in page


def test_it_emails_a_confirmation_link_and_signs_the_applicant_in(
    platform_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        page = platform_client.post(
            "/start/",
            {
                "institution_name": "St Mary's Hospital",
                "full_name": "Ada Admin",
                "email": EMAIL,
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
    assert "Check your email" in page.content.decode()
    message = mail.outbox[-1]
    assert message.to == [EMAIL]
    html = str(message.alternatives[0][0])  # type: ignore[union-attr]
    assert "Confirm my email" in html and "St Mary" in message.body
    # before confirming, the wizard is closed
    assert platform_client.get("/start/step/subdomain/")["Location"] == "/start/sign-in/"
    response = platform_client.get(confirmation_path(to=EMAIL), follow=True)
    assert response.redirect_chain[-1][0] == "/start/step/subdomain/"
    assert Onboarding.objects.get(email=EMAIL).email_verified is not None


def test_it_refuses_a_forged_confirmation_link(platform_client: Client) -> None:
    response = platform_client.get("/start/confirm/not-a-real-token/")
    assert response.status_code == 400
    assert VERIFY_LINK_INVALID in response.content.decode()


def _start(client: Client, email: str, password: str = PASSWORD) -> str:
    return client.post(
        "/start/",
        {
            "institution_name": "X",
            "full_name": "Eve",
            "email": email,
            "password1": password,
            "password2": password,
        },
    ).content.decode()


def test_it_never_hands_a_confirmed_application_to_a_second_sign_up(
    applicant: Client, django_capture_on_commit_callbacks: Any
) -> None:
    before = Onboarding.objects.get(email=EMAIL).password_hash
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        page = _start(Client(HTTP_HOST="localhost"), EMAIL, password="another-Passphrase-9")
    assert "Check your email" in page  # the same answer as for a new address
    assert Onboarding.objects.get(email=EMAIL).password_hash == before
    (notice,) = mail.outbox
    assert "already exists" in notice.body and "/start/confirm/" not in notice.body


def test_it_does_not_reveal_which_addresses_are_operators(
    platform_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        operator_page = _start(platform_client, "operator@secondread.example.com")
        stranger_page = _start(Client(HTTP_HOST="localhost"), "nobody@example.org")
    assert operator_page.replace("operator@secondread.example.com", "@") == stranger_page.replace(
        "nobody@example.org", "@"
    )
    assert not Onboarding.objects.filter(email="operator@secondread.example.com").exists()
    notice = next(m for m in mail.outbox if m.to == ["operator@secondread.example.com"])
    assert "cannot be used" in notice.body


def test_it_confirms_an_application_in_another_browser_only_with_its_password(
    db: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Pre-hijacking: someone starts an application with another person's address; that person
    following the emailed link must not confirm an application whose password the other knows."""
    attacker = Client(HTTP_HOST="localhost")
    with django_capture_on_commit_callbacks(execute=True):
        _start(attacker, EMAIL, password="attacker-Passphrase-1")
    victim = Client(HTTP_HOST="localhost")
    path = confirmation_path(to=EMAIL)
    page = victim.get(path)
    assert page.status_code == 200 and "type the password" in page.content.decode()
    assert Onboarding.objects.get(email=EMAIL).email_verified is None
    wrong = victim.post(path, {"password": PASSWORD}).content.decode()
    assert VERIFY_PASSWORD_WRONG.split(".")[0] in wrong.replace("&#x27;", "'")
    assert Onboarding.objects.get(email=EMAIL).email_verified is None
    # The real owner signs up again with their own password; the attacker's no longer works.
    with django_capture_on_commit_callbacks(execute=True):
        _start(victim, EMAIL)
    assert victim.get(confirmation_path(to=EMAIL)).status_code == 302
    assert Onboarding.objects.get(email=EMAIL).email_verified is not None
    attacker.post("/start/sign-in/", {"email": EMAIL, "password": "attacker-Passphrase-1"})
    assert attacker.get("/start/step/subdomain/")["Location"] == "/start/sign-in/"


def test_it_keeps_outsiders_out_of_the_wizard_and_its_endpoints(platform_client: Client) -> None:
    assert platform_client.get("/start/step/branding/")["Location"] == "/start/sign-in/"
    response = platform_client.get("/start/subdomain-check?slug=abc", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert platform_client.get("/start/progress", HTTP_ACCEPT="application/json").status_code == 403


def test_it_does_not_serve_the_wizard_on_an_institutions_domain(neuro_client: Client) -> None:
    assert neuro_client.get("/start/").status_code == 404


def test_it_gives_live_feedback_on_subdomains(applicant: Client) -> None:
    def check(slug: str) -> dict[str, Any]:
        return applicant.get(f"/start/subdomain-check?slug={slug}", HTTP_ACCEPT="application/json").json()

    assert check("www") == {"ok": False, "message": SUBDOMAIN_RESERVED, "host": "www.localhost"}
    assert check("neuro")["message"] == SUBDOMAIN_TAKEN
    assert check("a")["message"] == SUBDOMAIN_FORMAT
    assert check("Bad_Name")["ok"] is False
    assert check("st-mary") == {"ok": True, "message": SUBDOMAIN_AVAILABLE, "host": "st-mary.localhost"}


def test_it_refuses_taken_and_reserved_subdomains_with_a_message(applicant: Client) -> None:
    for slug, message in (
        ("cancer", SUBDOMAIN_TAKEN),
        ("admin", SUBDOMAIN_RESERVED),
        ("-x-", SUBDOMAIN_FORMAT),
    ):
        page = applicant.post("/start/step/subdomain/", {"slug": slug}).content.decode()
        assert message in page
    assert not Institution.objects.filter(status=Institution.Status.DRAFT).exists()


def test_it_reserves_the_subdomain_as_a_draft_nobody_can_reach_yet(drafted: Client) -> None:
    institution = Institution.objects.get(slug="st-mary")
    assert institution.status == Institution.Status.DRAFT
    assert not institution.domains.exists()
    assert Client(HTTP_HOST="st-mary.localhost").get("/").status_code == 404
    # and the name is taken for others now
    assert Client(HTTP_HOST="localhost").get("/start/").status_code == 200


def _look(**overrides: str) -> dict[str, Any]:
    values = {
        "primary_colour": "#0b4f6c",
        "accent_colour": "#8a3b12",
        "tagline": "Imaging second opinions",
        "welcome_text": "Welcome to St Mary's.",
        "support_email": "help@stmary.example.org",
        "support_phone": "+1 555 0100",
    }
    values.update(overrides)
    return values


def test_it_saves_the_look_with_a_re_encoded_logo(drafted: Client) -> None:
    logo = SimpleUploadedFile("logo.png", png_bytes((900, 300)), content_type="image/png")
    response = drafted.post("/start/step/branding/", {**_look(), "logo": logo})
    assert response["Location"] == "/start/step/texts/"
    brand = _draft_brand()
    assert brand.primary_colour == "#0b4f6c"
    assert brand.logo_key
    served = drafted.get("/start/logo.png")
    assert served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html><script>alert(1)</script></html>", LOGO_NOT_AN_IMAGE),
        (png_bomb(), LOGO_TOO_MANY_PIXELS),
        (png_bomb(5000), LOGO_TOO_MANY_PIXELS),
    ],
    ids=["html-named-png", "huge-bomb", "too-many-pixels"],
)
def test_it_refuses_bad_logos_and_stores_nothing(drafted: Client, data: bytes, message: str) -> None:
    logo = SimpleUploadedFile("logo.png", data, content_type="image/png")
    page = drafted.post("/start/step/branding/", {**_look(), "logo": logo}).content.decode()
    assert message in page
    brand = _draft_brand()
    assert brand.logo_key == "" and brand.primary_colour != "#0b4f6c"  # the whole step was refused
    assert not list(tenant_storage(brand.institution.schema_name).list_keys(""))
    assert "branding" not in Onboarding.objects.get(email=EMAIL).completed_steps


def test_it_refuses_unreadable_colours(drafted: Client) -> None:
    page = drafted.post("/start/step/branding/", _look(primary_colour="#ffcc00")).content.decode()
    assert COLOUR_TOO_LIGHT.format(ratio=1.5).split(",")[0] in page
    assert "1.5:1" in page
    assert _draft_brand().primary_colour != "#ffcc00"


def test_it_refuses_scripts_in_texts_and_cleans_harmless_markup(drafted: Client) -> None:
    page = drafted.post(
        "/start/step/texts/",
        {"consent_text": "<p>I agree</p><script>steal()</script>", "terms_text": "", "privacy_text": ""},
    ).content.decode()
    assert TEXT_HAS_CODE in page
    assert _draft_brand().consent_text == ""
    drafted.post(
        "/start/step/texts/",
        {
            "consent_text": "<p>I <b>agree</b></p><div>to this</div>",
            "terms_text": "Terms",
            "privacy_text": "",
        },
    )
    assert _draft_brand().consent_text == "<p>I <b>agree</b></p>to this"


def test_it_saves_fee_and_service_settings(drafted: Client) -> None:
    page = drafted.post("/start/step/fee/", {"fee_enabled": "on", "fee_amount": "", "fee_currency": "usd"})
    assert FEE_AMOUNT_NEEDED in page.content.decode()
    drafted.post(
        "/start/step/fee/",
        {"fee_enabled": "on", "fee_amount": "100.00", "fee_currency": "eur", "fee_payment": "waivers"},
    )
    drafted.post(
        "/start/step/service/",
        {"turnaround_business_days": "5", "specialties": "Neuroradiology\n\nOncology\n"},
    )
    row = InstitutionSettings.objects.get(institution__slug="st-mary")
    assert (row.fee_enabled, row.fee_amount_minor, row.fee_currency) == (True, 10000, "eur")
    assert row.turnaround_business_days == 5
    assert row.specialty_list == ["Neuroradiology", "Oncology"]


def test_it_resumes_at_the_first_unfinished_step_after_signing_in_again(drafted: Client) -> None:
    drafted.post("/start/step/branding/", _look())
    drafted.post("/start/sign-out/")
    later = Client(HTTP_HOST="localhost")
    page = later.post("/start/sign-in/", {"email": EMAIL, "password": "wrong-password"}).content.decode()
    assert SIGN_IN_FAILED.split(",")[0] in page
    response = later.post("/start/sign-in/", {"email": EMAIL, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/start/step/texts/"
    # what was saved is still there
    assert 'value="#0b4f6c"' in later.get("/start/step/branding/").content.decode()


def test_it_does_not_let_applicants_into_the_operator_console(applicant: Client) -> None:
    response = applicant.get("/operators/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    page = applicant.post("/accounts/login/", {"login": EMAIL, "password": PASSWORD}).content.decode()
    assert applicant.get("/operators/").status_code == 302, page[:200]


def test_it_discards_abandoned_drafts_and_their_files(
    drafted: Client, django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from institutions.onboarding import onboarding_discard_abandoned

    drafted.post("/start/step/branding/", {**_look(), "logo": SimpleUploadedFile("l.png", png_bytes())})
    schema = Institution.objects.get(slug="st-mary").schema_name
    assert list(tenant_storage(schema).list_keys(""))
    Onboarding.objects.update(updated=timezone.now() - timedelta(days=31))
    with django_capture_on_commit_callbacks(execute=True):
        assert onboarding_discard_abandoned() == 1
    assert not Institution.objects.filter(slug="st-mary").exists()
    assert not list(tenant_storage(schema).list_keys(""))
    assert not Onboarding.objects.filter(email=EMAIL).exists()
