"""The judged walk-through of issue 14, in Chromium, in Spanish and in English, on a desktop and a
390×844 phone: a new patient with a CD that holds his own CT, another person's MR and his PDF
report signs up, reads the institution's consent text (written in his language), removes the
foreign study, finds his report from the disc among his reports, sees the fee in his language's
way of writing money and uses a waiver code, gets emails that link to the right pages, reads the
opinion, shares it with his doctor (who opens it with the code), downloads his images and looks
at them in the viewer. axe finds nothing on any page (tests/browser/test_intake_wizard.py's
assert_accessible, which also checks that no page scrolls sideways on a phone)."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from branding.models import Brand, BrandTranslation
from branding.services import brand_translation_save, brand_update
from imaging.models import Report, Study
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case, CaseConsent
from payments.models import WaiverCode
from payments.services.waivers import waiver_code_normalise
from review.models import ReviewSettings
from review.services import case_assign, opinion_draft_save, opinion_release, opinion_sign
from tenants.models import Institution, InstitutionSettings
from tests.browser.test_intake_wizard import PASSWORD, PHONE, assert_accessible
from tests.browser.test_patient_files import disc
from tests.browser.test_wizard_spanish import email_to
from tests.live import LiveServer, committed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1280, "height": 900}
CONSENT = {
    "en": "<p>I allow Northfield's physicians to read my images for a second opinion.</p>",
    "es": "<p>Autorizo a los médicos de Northfield a leer mis imágenes para una segunda opinión.</p>",
}
FINDINGS = "A 2 cm non-enhancing lesion in the left frontal lobe."
WAIVER = "WALK-THROUGH-2026"
NBSP = "\u00a0"
# What the patient reads, in each language (the words the walk-through clicks and checks).
WORDS = {
    "en": {
        "request": "Request a second opinion",
        "full_name": "Your full name",
        "for_me": "Me: I am the patient",
        "create": "Create my account",
        "check_email": "Check your email",
        "confirm_email_text": "Confirm your email address",
        "confirm": "Confirm my email address",
        "birth": "Patient's date of birth",
        "male": "Male",
        "agree": "agree to the terms",
        "save": "Save and continue",
        "diagnosis": "Which diagnosis or treatment",
        "question": "What would you like the physician to answer?",
        "soon": "Soon",
        "send_files": "Send 3 files",
        "foreign": "These images seem to be of D. J., born 1958",
        "remove": "Remove these images",
        "to_reports": "Continue to reports",
        "to_summary": "Continue to check and send",
        "send": "Continue to payment",
        "waiver": "I have a waiver code",
        "use_code": "Use code",
        "fee": "€1,234.50",
        "received_email": "has received your request for a second opinion",
        "released_email": "Read your opinion",
        "read_opinion": "Read your second opinion",
        "who": "Who is it for? (only you see this)",
        "make_link": "Make a link for my doctor",
        "see_images": "See your images",
        "viewer_title": "Images of case",
        "viewer_invert": "Invert",
    },
    "es": {
        "request": "Pedir una segunda opinión",
        "full_name": "Su nombre completo",
        "for_me": "Para mí: soy el paciente",
        "create": "Crear mi cuenta",
        "check_email": "Revise su correo electrónico",
        "confirm_email_text": "Confirme su correo electrónico abriendo este enlace",
        "confirm": "Confirmar mi correo electrónico",
        "birth": "Fecha de nacimiento del paciente",
        "male": "Hombre",
        "agree": "acepto las condiciones",
        "save": "Guardar y continuar",
        "diagnosis": "¿Qué diagnóstico o tratamiento desea que se revise?",
        "question": "¿Qué le gustaría que respondiera el médico?",
        "soon": "Pronto (hay que decidir en unas semanas)",
        "send_files": "Enviar 3 archivos",
        "foreign": "Parece que estas imágenes son de D. J., nacido/a en 1958",
        "remove": "Retirar estas imágenes",
        "to_reports": "Continuar a los informes",
        "to_summary": "Continuar a revisar y enviar",
        "send": "Continuar al pago",
        "waiver": "Tengo un código de exención",
        "use_code": "Usar el código",
        "fee": f"1.234,50{NBSP}€",
        "received_email": "ha recibido su solicitud de segunda opinión",
        "released_email": "Leer su opinión",
        "read_opinion": "Leer su segunda opinión",
        "who": "¿Para quién es? (solo usted lo ve)",
        "make_link": "Crear un enlace para mi médico",
        "see_images": "Ver sus imágenes",
        "viewer_title": "Imágenes del caso",
        "viewer_invert": "Invertir",
    },
}


@pytest.fixture(scope="module")
def charging_neuro(django_db_setup: None, django_db_blocker: Any) -> Iterator[Institution]:
    """Northfield charges €1,234.50, payable with waiver codes only, has its consent in English
    and Spanish, and sends no opinion to peer review (so the reviewer can release it at once)."""
    with django_db_blocker.unblock():
        neuro = Institution.objects.get(slug="neuro")
        brand = Brand.objects.get(institution=neuro)
        consent_before = brand.consent_text
        brand_update(brand=brand, values={"consent_text": CONSENT["en"]})
        brand_translation_save(brand=brand, language="es", values={"consent_text": CONSENT["es"]})
        fee_before = InstitutionSettings.objects.filter(institution=neuro).values().first()
        InstitutionSettings.objects.update_or_create(
            institution=neuro,
            defaults={
                "fee_enabled": True,
                "fee_amount": Decimal("1234.50"),
                "fee_currency": "eur",
                "fee_waivers_only": True,
            },
        )
        with schema_context("neuro"):
            waiver = WaiverCode.objects.create(code=waiver_code_normalise(WAIVER), purpose="walk-through")
            review = ReviewSettings.objects.first()
            peer_before = review.peer_review_percent if review else None
            ReviewSettings.objects.update(peer_review_percent=0)
    yield neuro
    with django_db_blocker.unblock():
        brand_update(brand=Brand.objects.get(institution=neuro), values={"consent_text": consent_before})
        BrandTranslation.objects.filter(institution=neuro).delete()
        if fee_before:
            fields = {k: v for k, v in fee_before.items() if k not in ("id", "institution_id")}
            InstitutionSettings.objects.filter(institution=neuro).update(**fields)
        with schema_context("neuro"):
            if peer_before is not None:
                ReviewSettings.objects.update(peer_review_percent=peer_before)
            WaiverCode.objects.filter(pk=waiver.pk).update(active=False)


def _link_in(email: str, path_pattern: str) -> str:
    match = re.search(r"(http://[^\s\"<>]+" + path_pattern + ")", email)
    assert match, email
    return match.group(1)


def _release_opinion(case_id: uuid.UUID, neuro: Institution) -> None:
    """The reviewer's part, done as the workspace does it (the services it calls)."""
    with tenant_context(neuro):
        case = Case.objects.get(public_id=case_id)
        reviewer = User.objects.get(email="reviewer1@neuro.example.com")
        coordinator = User.objects.get(email="coordinator@neuro.example.com")
        case_assign(case=case, reviewer=reviewer, by=coordinator)
        case.refresh_from_db()
        opinion_draft_save(
            case=case,
            author=reviewer,
            data={
                "findings": FINDINGS,
                "impression": "Most consistent with a low-grade glioma.",
                "agreement": "agree",
                "recommendation": "surgery",
            },
        )
        case.refresh_from_db()
        opinion_sign(case=case, signer=reviewer, secret=DEMO_PASSWORD, institution=neuro)
        case.refresh_from_db()
        opinion_release(case=case, by=coordinator)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", ["es", "en"])
def test_a_new_patient_walks_from_the_cd_to_the_shared_opinion(
    live_platform: LiveServer,
    celery_worker_process: Any,
    browser: Any,
    tmp_path: Path,
    charging_neuro: Institution,
    django_db_blocker: Any,
    language: str,
    viewport: dict[str, int],
) -> None:
    words = WORDS[language]
    context = browser.new_context(
        locale="es-ES" if language == "es" else "en-GB", viewport=viewport, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    email = f"robert-{language}-{uuid.uuid4().hex[:8]}@patients.example.com"

    # The portal, in the browser's language, with the fee written the way that language writes it.
    page.goto(live_platform.url("neuro"))
    assert page.locator("html").get_attribute("lang") == language
    assert words["fee"] in page.inner_text("main")
    assert_accessible(page, "portal home")
    page.get_by_role("link", name=words["request"]).first.click()
    page.wait_for_url("**/accounts/signup/")
    assert_accessible(page, "sign-up")
    page.get_by_label(words["full_name"]).fill("Robert Alvarez")
    page.locator("#id_email").fill(email)
    page.get_by_label(words["for_me"]).check()
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name=words["create"]).click()
    page.get_by_role("heading", name=words["check_email"]).wait_for()
    confirmation = email_to(live_platform.mail_dir, email, words["confirm_email_text"])
    page.goto(_link_in(confirmation, r"/accounts/confirm-email/\S+/"))
    assert_accessible(page, "confirm email")
    page.get_by_role("button", name=words["confirm"]).click()
    page.wait_for_url(live_platform.url("neuro", "/"))
    page.get_by_role("link", name=words["request"]).first.click()

    # Step 1: the institution's consent text, in the patient's language, read where it is given.
    page.wait_for_url(re.compile(r".*/cases/[0-9a-f-]{36}/patient/$"))
    case_url = page.url.rsplit("patient/", 1)[0]
    case_id = uuid.UUID(case_url.rstrip("/").rsplit("/", 1)[1])
    consent = page.get_by_test_id("consent-text").inner_text()
    assert re.sub("<[^>]+>", "", CONSENT[language]) in consent
    assert_accessible(page, "step 1 with the consent text")
    page.get_by_label(words["birth"]).fill("1961-04-23")
    page.get_by_label(words["male"], exact=True).check()
    page.get_by_label(words["agree"]).check()
    page.get_by_role("button", name=words["save"]).click()

    # Step 2.
    page.wait_for_url(case_url + "question/")
    assert_accessible(page, "step 2")
    page.get_by_label(words["diagnosis"]).fill("Glioma")
    page.get_by_label(words["question"]).fill("Do I need surgery?")
    page.get_by_label(words["soon"]).check()
    page.get_by_role("button", name=words["save"]).click()

    # Step 3: the CD (his CT, DOE^JANE's MR, his PDF report). The report's type is asked.
    page.wait_for_url(case_url + "images/")
    page.locator("#image-uploader[data-ready]").wait_for(state="attached")
    page.set_input_files("#folder-input", str(disc(tmp_path)))
    page.get_by_test_id("scan-reports").wait_for()
    page.locator("#image-uploader select").first.select_option("radiology")
    assert_accessible(page, "step 3, what the disc holds")
    page.get_by_role("button", name=words["send_files"]).click()
    warning = page.get_by_test_id("identity-warning")
    warning.wait_for(timeout=120_000)
    assert words["foreign"] in warning.inner_text()
    assert_accessible(page, "step 3 with a foreign study")
    page.get_by_role("button", name=words["remove"]).click()
    page.wait_for_url(case_url + "images/")
    page.get_by_test_id("study-row").first.wait_for()
    assert page.get_by_test_id("identity-warning").count() == 0
    assert_accessible(page, "step 3 after removing the foreign study")
    page.get_by_role("link", name=words["to_reports"]).click()

    # Step 4: the report found on the disc.
    page.wait_for_url(case_url + "reports/")
    received = page.get_by_test_id("report-received")
    received.wait_for(timeout=60_000)
    assert "ct report.pdf" in received.inner_text()
    assert_accessible(page, "step 4 with the disc's report")
    page.get_by_role("link", name=words["to_summary"]).click()

    # Step 5, then the fee: waived with a code.
    page.wait_for_url(case_url + "summary/")
    assert_accessible(page, "step 5")
    page.get_by_role("button", name=words["send"]).click()
    page.wait_for_url(case_url + "payment/")
    assert_accessible(page, "payment step")
    page.locator("main a.primary-action").click()
    page.wait_for_url(re.compile(r".*/payments/case/[0-9a-f-]{36}/$"))
    assert words["fee"] in page.get_by_test_id("payment-amount").inner_text()
    assert_accessible(page, "payment")
    if not page.locator("input[name=code]").is_visible():
        page.get_by_text(words["waiver"]).click()
    page.locator("input[name=code]").fill(WAIVER)
    page.get_by_role("button", name=words["use_code"]).click()
    page.locator("[data-testid=payment-status][data-status=waived]").wait_for()
    assert_accessible(page, "fee waived")

    # The "received" email links to the case's own page.
    received_email = email_to(live_platform.mail_dir, email, words["received_email"], seconds=60)
    page.goto(_link_in(received_email, f"/cases/{case_id}/"))
    page.get_by_test_id("case-status").wait_for(state="attached")
    assert_accessible(page, "case status")

    # A reviewer signs and releases the opinion; its email links to the opinion.
    with django_db_blocker.unblock():
        # Committed on a connection of its own: the test's is inside a transaction the live
        # server cannot see.
        committed(lambda: _release_opinion(case_id, charging_neuro))
    # Released from this process, whose emails are kept in memory (the live server's go to files).
    (released_email,) = [
        str(m.body) for m in mail.outbox if m.to == [email] and words["released_email"] in m.body
    ]
    # (this process does not know the live server's port: the link's path is what is checked)
    assert _link_in(released_email, f"/opinions/{case_id}/").startswith("http://neuro.localhost")
    page.goto(live_platform.url("neuro", f"/opinions/{case_id}/"))
    opinion = page.get_by_test_id("patient-opinion")
    opinion.wait_for()
    assert FINDINGS in opinion.inner_text()
    assert_accessible(page, "the opinion")

    # Shared with his doctor, who opens it with the code in another browser.
    page.get_by_label(words["who"]).fill("Dr. Local")
    page.get_by_role("button", name=words["make_link"]).click()
    link = page.get_by_test_id("share-link").input_value()
    code = page.get_by_test_id("share-code").inner_text()
    assert_accessible(page, "the link for the doctor")
    doctor_context = browser.new_context(viewport=viewport)
    try:
        doctor = doctor_context.new_page()
        doctor.goto(link)
        doctor.locator("input[name=code]").fill(code)
        doctor.locator("form button[type=submit]").last.click()
        doctor.get_by_test_id("shared-opinion").wait_for()
        assert FINDINGS in doctor.get_by_test_id("shared-opinion").inner_text()
        assert_accessible(doctor, "the doctor's view of the opinion")
    finally:
        doctor_context.close()

    # His images: the original files as a zip, and the viewer, in his language.
    page.goto(case_url)
    with page.expect_download() as download_info:
        page.get_by_test_id("download-images").click()
    with zipfile.ZipFile(io.BytesIO(Path(download_info.value.path()).read_bytes())) as archive:
        assert archive.namelist(), "the zip of his images is empty"
    page.get_by_role("link", name=words["see_images"]).click()
    page.wait_for_selector("[data-sr-viewer][data-state=rendered]", timeout=60_000)
    assert page.inner_text("h1").startswith(words["viewer_title"])
    assert words["viewer_invert"] in page.inner_text("[role=toolbar]")
    assert_accessible(page, "the viewer")
    assert errors == []

    with django_db_blocker.unblock(), tenant_context(charging_neuro):
        case = Case.objects.get(public_id=case_id)
        assert case.status == Case.Status.RELEASED
        assert CaseConsent.objects.get(case=case, kind="consent").language == language
        assert (
            Study.objects.get(case=case, modalities="MR").excluded_reason
            == Study.Exclusion.PATIENT_NOT_THEIRS
        )
        assert Report.objects.filter(case=case).count() == 1
    context.close()
