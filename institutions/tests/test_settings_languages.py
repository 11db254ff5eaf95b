"""The administrator chooses the portal's languages and writes the texts per language, on the
Texts settings page; nobody else reaches it."""

from __future__ import annotations

from django.test import Client

from branding.forms import DEFAULT_NOT_OFFERED, LANGUAGES_NONE, TEXT_HAS_CODE
from branding.models import Brand, BrandTranslation, LegalTextVersion
from tenants.models import Institution
from tests.staff import staff_force_login

PAGES = ["/settings/texts/es/"]
SPANISH_TEXTS = {"welcome_text": "Hola", "consent_text": "", "terms_text": "", "privacy_text": ""}
POSTS = [
    ("/settings/texts/languages", {"languages": ["en"], "default_language": "en"}),
    ("/settings/texts/es/", SPANISH_TEXTS),
]


def _admin(host: str = "neuro.localhost", email: str = "admin@neuro.example.com") -> Client:
    client = Client(HTTP_HOST=host)
    staff_force_login(client, email)
    return client


def _brand(institution: Institution) -> Brand:
    return Brand.objects.get(institution=institution)


def test_it_offers_both_languages_by_default(neuro: Institution) -> None:
    page = _admin().get("/settings/texts/").content.decode()
    assert 'name="languages" value="en"' in page and 'name="languages" value="es"' in page
    assert page.count("checked") >= 2 and 'data-testid="texts-in-es"' in page
    assert _brand(neuro).language_list == ["en", "es"]


def test_it_saves_the_languages_and_refuses_none_or_a_default_not_offered(neuro: Institution) -> None:
    admin = _admin()
    refused = admin.post("/settings/texts/languages", {"default_language": "en"})
    assert refused.status_code == 400 and LANGUAGES_NONE in refused.content.decode()
    refused = admin.post("/settings/texts/languages", {"languages": ["en"], "default_language": "es"})
    assert refused.status_code == 400 and DEFAULT_NOT_OFFERED in refused.content.decode()
    assert _brand(neuro).language_list == ["en", "es"]

    saved = admin.post("/settings/texts/languages", {"languages": ["es"], "default_language": "es"})
    assert saved.status_code == 302
    brand = _brand(neuro)
    assert (brand.language_list, brand.default_language) == (["es"], "es")
    page = admin.get("/settings/texts/").content.decode()
    assert "Texts in Español" in page and 'data-testid="texts-in-' not in page  # no other language
    assert admin.get("/settings/texts/en/").status_code == 404  # not offered


def test_it_saves_the_texts_of_another_language_sanitised(neuro: Institution) -> None:
    admin = _admin()
    refused = admin.post("/settings/texts/es/", {"consent_text": "<p>Sí</p><script>x()</script>"})
    assert refused.status_code == 200 and TEXT_HAS_CODE in refused.content.decode()
    assert not BrandTranslation.objects.filter(institution=neuro).exists()

    saved = admin.post(
        "/settings/texts/es/",
        {"welcome_text": "Bienvenido", "consent_text": "<p>Acepto <b>todo</b></p><div>y más</div>",
         "terms_text": "", "privacy_text": ""},
    )  # fmt: skip
    assert saved.status_code == 302
    row = BrandTranslation.objects.get(institution=neuro, language="es")
    assert (row.welcome_text, row.consent_text) == ("Bienvenido", "<p>Acepto <b>todo</b></p>y más")
    version = LegalTextVersion.objects.get(institution=neuro, kind="consent", language="es")
    assert version.text == row.consent_text
    page = admin.get("/settings/texts/es/").content.decode()
    assert "Bienvenido" in page and 'lang="es"' in page
    assert admin.get("/settings/texts/fr/").status_code == 404
    assert admin.get("/settings/texts/en/").status_code == 404  # the default language: the main form


def test_it_refuses_staff_who_are_not_admins_and_patients(neuro: Institution) -> None:
    clients = [_admin(email="coordinator@neuro.example.com"), _admin(email="reviewer1@neuro.example.com")]
    patient = Client(HTTP_HOST="neuro.localhost")
    patient.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": "secondread-demo"})
    for client in [*clients, patient]:
        for path in PAGES:
            assert client.get(path).status_code == 403, path
        for path, data in POSTS:
            assert client.post(path, data).status_code == 403, path
    assert _brand(neuro).language_list == ["en", "es"]
    assert not BrandTranslation.objects.filter(institution=neuro).exists()


def test_it_sends_a_logged_out_visitor_to_sign_in(neuro: Institution) -> None:
    anonymous = Client(HTTP_HOST="neuro.localhost")
    for path, data in POSTS:
        response = anonymous.post(path, data)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert _brand(neuro).language_list == ["en", "es"]


def test_it_refuses_another_institutions_admin(neuro: Institution, cancer: Institution) -> None:
    cookie = _admin().cookies["sessionid"].value
    other = Client(HTTP_HOST="cancer.localhost")
    other.cookies["sessionid"] = cookie
    for path, data in POSTS:
        assert other.post(path, data).status_code in (302, 403)
    assert _brand(cancer).language_list == ["en", "es"]
    assert not BrandTranslation.objects.filter(institution=cancer).exists()
