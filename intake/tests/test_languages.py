"""Patients read the portal in their language (issue 14, item 9): Spanish when the browser asks
for it, a language switch that is remembered, emails in the patient's language also when staff's
action sends them; staff pages stay in English."""

from __future__ import annotations

from collections.abc import Callable

from django.core import mail
from django.test import Client
from django.utils import timezone, translation
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from intake.models import Case
from intake.status import case_number_assign
from intake.workflow import case_status_change
from tenants.models import Institution
from tests.staff import staff_force_login

SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}


def _patient(neuro: Institution, *, language: str = "") -> User:
    with schema_context(neuro.schema_name):
        user = User.objects.get(email="patient@neuro.example.com")
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language
        return user


def test_it_shows_the_portal_in_the_browsers_language(neuro_client: Client) -> None:
    page = neuro_client.get("/", headers=SPANISH)
    html = page.content.decode()
    assert page["Content-Language"] == "es"
    assert '<html lang="es">' in html
    assert "Pedir una segunda opinión" in html and "Request a second opinion" not in html
    assert "Servicio de segunda opinión ofrecido con SecondRead" in html

    english = neuro_client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).content.decode()
    assert '<html lang="en">' in english and "Request a second opinion" in english


def test_it_keeps_the_institutions_own_texts_as_written(neuro: Institution, neuro_client: Client) -> None:
    from branding.models import Brand

    Brand.objects.filter(institution=neuro).update(welcome_text="Welcome to our neurology service.")
    html = neuro_client.get("/", headers=SPANISH).content.decode()
    assert "Welcome to our neurology service." in html  # not translated, as the institution wrote it
    assert "Obtenga una segunda opinión de" in html


def test_the_language_switch_is_remembered(neuro_client: Client) -> None:
    spanish = neuro_client.get("/", headers=SPANISH).content.decode()
    assert 'data-testid="language-switch"' in spanish
    assert (
        'value="en" lang="en"><span class="visually-hidden">Leer este sitio en </span>English</button>'
        in spanish
    )

    switched = neuro_client.post("/i18n/setlang/", {"language": "en", "next": "/cases/"}, headers=SPANISH)
    assert switched.status_code == 302 and switched["Location"] == "/cases/"
    cookie = switched.cookies["django_language"]
    assert cookie.value == "en" and int(cookie["max-age"]) >= 300 * 24 * 3600  # not just this visit

    # The browser still asks for Spanish; the choice wins, on every page.
    page = neuro_client.get("/accounts/login/", headers=SPANISH).content.decode()
    assert '<html lang="en">' in page and "Forgotten your password?" in page
    assert 'lang="es"><span class="visually-hidden">Read this site in </span>Español</button>' in page  # back


def test_it_refuses_a_language_it_does_not_offer(neuro_client: Client) -> None:
    neuro_client.post("/i18n/setlang/", {"language": "xx", "next": "/"})
    assert "django_language" not in neuro_client.cookies
    assert '<html lang="es">' in neuro_client.get("/", headers=SPANISH).content.decode()


def test_it_remembers_a_signed_in_patients_language(neuro: Institution, neuro_client: Client) -> None:
    _patient(neuro, language="")
    staff_force_login(neuro_client, "patient@neuro.example.com")
    page = neuro_client.get("/cases/", headers=SPANISH)
    assert "Mis solicitudes" in page.content.decode()
    with schema_context(neuro.schema_name):
        assert User.objects.get(email="patient@neuro.example.com").language == "es"


def test_staff_pages_stay_in_english(neuro: Institution, staff_client: Callable[[str], Client]) -> None:
    coordinator = staff_client("coordinator")
    html = coordinator.get("/workspace/", headers=SPANISH).content.decode()
    assert '<html lang="en">' in html and "Sign out" in html and "Cerrar sesión" not in html
    assert 'data-testid="language-switch"' not in html
    with schema_context(neuro.schema_name):
        assert User.objects.get(email="coordinator@neuro.example.com").language == ""


def test_the_wizards_words_follow_the_page(neuro: Institution, neuro_client: Client) -> None:
    _patient(neuro)
    staff_force_login(neuro_client, "patient@neuro.example.com")
    started = neuro_client.post("/cases/new/", headers=SPANISH)
    step = neuro_client.get(started["Location"], headers=SPANISH).content.decode()
    assert "Paso 1 de" in step and "Sobre el paciente" in step
    assert "Nombre completo del paciente" in step  # the form's labels
    assert "/i18n/messages.js?l=es" in step  # the wizard's JavaScript messages, in Spanish

    refused = neuro_client.post(started["Location"], {"patient_name": ""}, headers=SPANISH).content.decode()
    assert "Escriba el nombre completo del paciente." in refused  # the form's errors
    assert "Revise estas respuestas" in refused


def test_the_javascript_catalogue_is_in_the_pages_language(neuro_client: Client) -> None:
    spanish = neuro_client.get("/i18n/messages.js?l=es", headers=SPANISH).content.decode()
    assert "Hemos encontrado %(images)s." in spanish and "django.ngettext" in spanish
    english = neuro_client.get("/i18n/messages.js?l=en", headers={"Accept-Language": "en"}).content.decode()
    assert "Hemos encontrado" not in english


def _status_emails(case: Case) -> list[mail.EmailMessage]:
    return [message for message in mail.outbox if case.number and case.number in str(message.subject)]


def test_a_patients_emails_are_in_their_language(neuro: Institution) -> None:
    owner = _patient(neuro, language="es")
    with tenant_context(neuro):
        case = Case.objects.create(
            owner=owner, status=Case.Status.DRAFT, patient_name="Lucía Fernández", submitted_at=timezone.now()
        )
        case_number_assign(case=case, prefix="NNI")
        with translation.override("en"):  # whoever's request it is (here: an English one)
            case_status_change(case=case, status=Case.Status.SUBMITTED)
    (email,) = [message for message in _status_emails(case) if message.to == [owner.email]]
    assert email.subject == f"Hemos recibido su caso ({case.number})"
    assert "Hola, Lucía Fernández:" in email.body
    assert "ha recibido su solicitud de segunda opinión" in email.body
    assert "Seguir su caso: http://neuro.localhost" in email.body
    html = str(email.alternatives[0][0])  # type: ignore[attr-defined]
    assert '<html lang="es">' in html and "Número de caso:" in html
    # Staff told about the new case read English.
    staff = [message for message in mail.outbox if message.to[0].startswith("coordinator@")]
    assert staff and all("Hemos" not in message.body for message in staff)


def test_a_patient_who_reads_english_gets_english_emails(neuro: Institution) -> None:
    owner = _patient(neuro, language="en")
    with tenant_context(neuro):
        case = Case.objects.create(owner=owner, status=Case.Status.DRAFT, patient_name="Ann Lee")
        case_number_assign(case=case, prefix="NNI")
        with translation.override("es"):  # a Spanish page caused it: still the patient's language
            case_status_change(case=case, status=Case.Status.SUBMITTED)
    (email,) = [message for message in _status_emails(case) if message.to == [owner.email]]
    assert email.subject == f"Your case has been received ({case.number})"


def test_the_upload_servers_refusals_are_in_the_pages_language(
    neuro: Institution, neuro_client: Client
) -> None:
    # The wizard shows them beside a file that could not be sent ("could not be sent: …").
    refused = neuro_client.post("/intake/tus/", headers=SPANISH)
    assert refused.status_code == 412
    assert (
        refused.content.decode()
        == "Esta dirección solo acepta envíos de un cliente tus (falta la cabecera Tus-Resumable)."
    )
    english = neuro_client.post("/intake/tus/", headers={"Accept-Language": "en"})
    assert "only accepts uploads from a tus client" in english.content.decode()
