"""Institutions choose the languages their portal offers and write their texts per language
(issue 14, item 9): the switch, the browser's choice and the emails keep to the institution's
languages; a patient reads the institution's text in their language, else in its default one;
the consent recorded names the language of the version accepted."""

from __future__ import annotations

from django.core import mail
from django.test import Client
from django.utils import timezone, translation
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from branding.models import Brand, LegalTextVersion
from branding.services import brand_languages_set, brand_translation_save, brand_update
from intake.models import Case, CaseConsent
from intake.status import case_number_assign
from intake.tests.test_wizard import PATIENT_STEP, new_case, patient_user, signed_in
from intake.workflow import case_status_change
from tenants.models import Institution

SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}
FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9"}


def _offer(institution: Institution, languages: list[str], default: str) -> Brand:
    brand = Brand.objects.get(institution=institution)
    return brand_languages_set(brand=brand, languages=languages, default_language=default)


def test_an_english_only_portal_stays_english_for_a_spanish_browser(
    neuro: Institution, neuro_client: Client
) -> None:
    _offer(neuro, ["en"], "en")
    page = neuro_client.get("/", headers=SPANISH)
    html = page.content.decode()
    assert page["Content-Language"] == "en" and '<html lang="en">' in html
    assert "Request a second opinion" in html
    assert 'data-testid="language-switch"' not in html  # nothing to switch to
    # A Spanish cookie (set before, or by hand) is not obeyed either.
    neuro_client.cookies["django_language"] = "es"
    assert '<html lang="en">' in neuro_client.get("/accounts/login/").content.decode()


def test_a_spanish_only_portal_is_spanish_for_an_english_browser(
    neuro: Institution, neuro_client: Client
) -> None:
    _offer(neuro, ["es"], "es")
    html = neuro_client.get("/", headers=ENGLISH).content.decode()
    assert '<html lang="es">' in html and "Pedir una segunda opinión" in html
    assert 'data-testid="language-switch"' not in html


def test_a_browser_asking_for_none_of_them_gets_the_default_language(
    neuro: Institution, neuro_client: Client
) -> None:
    _offer(neuro, ["en", "es"], "es")
    assert '<html lang="es">' in neuro_client.get("/", headers=FRENCH).content.decode()
    _offer(neuro, ["en", "es"], "en")
    assert '<html lang="en">' in neuro_client.get("/", headers=FRENCH).content.decode()
    # Each institution its own: the cancer centre still offers both.
    html = Client(HTTP_HOST="cancer.localhost").get("/", headers=SPANISH).content.decode()
    assert '<html lang="es">' in html and 'data-testid="language-switch"' in html


def test_a_patient_reads_the_institutions_texts_in_their_language(
    neuro: Institution, neuro_client: Client
) -> None:
    brand = Brand.objects.get(institution=neuro)
    brand_update(
        brand=brand, values={"terms_text": "<p>Our terms.</p>", "privacy_text": "<p>Our privacy.</p>"}
    )
    Brand.objects.filter(pk=brand.pk).update(welcome_text="Welcome to Northfield.")
    brand_translation_save(
        brand=brand,
        language="es",
        values={"welcome_text": "Bienvenido a Northfield.", "terms_text": "<p>Nuestras condiciones.</p>"},
    )
    spanish_home = neuro_client.get("/", headers=SPANISH).content.decode()
    assert "Bienvenido a Northfield." in spanish_home and "Welcome to Northfield." not in spanish_home
    assert "Nuestras condiciones." in neuro_client.get("/terms/", headers=SPANISH).content.decode()
    # Not written in Spanish: the text in the institution's default language, marked as English.
    assert (
        '<div lang="en"><p>Our privacy.</p></div>'
        in neuro_client.get("/privacy/", headers=SPANISH).content.decode()
    )
    english = neuro_client.get("/terms/", headers=ENGLISH).content.decode()
    assert "Our terms." in english and "Nuestras condiciones." not in english and '<div lang="' not in english
    assert "Welcome to Northfield." in neuro_client.get("/", headers=ENGLISH).content.decode()
    assert (
        "Nuestras condiciones." in neuro_client.get("/brand/texts/terms/", headers=SPANISH).content.decode()
    )


def test_it_does_not_show_a_text_in_a_language_no_longer_offered(
    neuro: Institution, neuro_client: Client
) -> None:
    brand = Brand.objects.get(institution=neuro)
    brand_update(brand=brand, values={"terms_text": "<p>Our terms.</p>"})
    brand_translation_save(brand=brand, language="es", values={"terms_text": "<p>Nuestras condiciones.</p>"})
    _offer(neuro, ["en"], "en")
    assert "Our terms." in neuro_client.get("/terms/", headers=SPANISH).content.decode()


def test_the_consent_recorded_names_the_language_accepted(neuro: Institution) -> None:
    brand = Brand.objects.get(institution=neuro)
    brand_update(brand=brand, values={"consent_text": "<p>I agree.</p>", "terms_text": "<p>Terms.</p>"})
    brand_translation_save(brand=brand, language="es", values={"consent_text": "<p>Acepto.</p>"})
    patient = patient_user(neuro)
    case = new_case(neuro, patient)
    client = signed_in(neuro, patient)
    step = client.get(f"/cases/{case.public_id}/patient/", headers=SPANISH).content.decode()
    assert "<p>Acepto.</p>" in step and "I agree." not in step
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP, headers=SPANISH)
    with tenant_context(neuro):
        accepted = {row.kind: row for row in CaseConsent.objects.filter(case=case)}
    assert (accepted["consent"].language, accepted["terms"].language) == (
        "es",
        "en",
    )  # terms: not written in es
    version = LegalTextVersion.objects.get(
        institution=neuro, kind="consent", language="es", version=accepted["consent"].version
    )
    assert version.text == "<p>Acepto.</p>" and version.sha256 == accepted["consent"].sha256
    # The same patient accepting in English adds the English version beside it.
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP, headers=ENGLISH)
    with tenant_context(neuro):
        languages = sorted(
            CaseConsent.objects.filter(case=case, kind="consent").values_list("language", flat=True)
        )
    assert languages == ["en", "es"]


def test_the_texts_are_sanitised_in_every_language(neuro: Institution, neuro_client: Client) -> None:
    brand = Brand.objects.get(institution=neuro)
    # The form sanitises; a row written around it is sanitised again when shown.
    brand_translation_save(
        brand=brand, language="es", values={"terms_text": "<p>Hola</p><script>alert(1)</script>"}
    )
    page = neuro_client.get("/terms/", headers=SPANISH).content.decode()
    assert "<p>Hola</p>" in page and "alert(1)" not in page


def test_emails_keep_to_the_institutions_languages(neuro: Institution) -> None:
    _offer(neuro, ["en"], "en")
    with schema_context(neuro.schema_name):
        owner = User.objects.get(email="patient@neuro.example.com")
        User.objects.filter(pk=owner.pk).update(language="es")
        owner.language = "es"
    with tenant_context(neuro):
        case = Case.objects.create(
            owner=owner, status=Case.Status.DRAFT, patient_name="Ana Ruiz", submitted_at=timezone.now()
        )
        case_number_assign(case=case, prefix="NNI")
        with translation.override("es"):
            case_status_change(case=case, status=Case.Status.SUBMITTED)
    (email,) = [m for m in mail.outbox if str(case.number) in str(m.subject) and m.to == [owner.email]]
    assert email.subject == f"Your case has been received ({case.number})"
