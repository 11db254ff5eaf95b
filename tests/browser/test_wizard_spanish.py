"""A patient whose browser asks for Spanish walks the request in Chromium (issue 14, item 9):
sign-up, the confirmation email, every wizard step (the wizard's own JavaScript messages
included) and the case's email are in Spanish; the language switch changes the site to English
and back, and the choice holds from page to page. axe checks the Spanish pages."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_intake_wizard import PASSWORD, assert_accessible, cd_folder
from tests.live import LiveServer

pytestmark = pytest.mark.browser


def email_to(mail_dir: Path, address: str, words: str, seconds: float = 30) -> str:
    """The text of the email to ``address`` that says ``words`` (the worker sends it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message in sorted(mail_dir.glob("*.log")):
            text = message.read_text(encoding="utf-8")
            if f"To: {address}" in text and words in text:
                return text
        time.sleep(0.3)
    raise AssertionError(f"no email to {address} saying {words!r}")


def test_a_spanish_speaking_patient_walks_the_request_in_spanish(
    live_platform: LiveServer, celery_worker_process: Any, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(locale="es-ES")  # Accept-Language: es-ES, as a Spanish browser
    page = context.new_page()
    email = f"lucia-{uuid.uuid4().hex[:8]}@pacientes.example.com"

    page.goto(live_platform.url("neuro"))
    assert page.locator("html").get_attribute("lang") == "es"
    assert "Obtenga una segunda opinión de" in page.get_by_role("heading", level=1).inner_text()
    assert_accessible(page, "inicio")
    page.get_by_role("link", name="Pedir una segunda opinión").click()
    page.wait_for_url("**/accounts/signup/")
    assert_accessible(page, "registro")
    page.get_by_label("Su nombre completo").fill("Lucía Fernández")
    page.locator("#id_email").fill(email)
    page.get_by_label("Para mí: soy el paciente").check()
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Crear mi cuenta").click()
    page.get_by_role("heading", name="Revise su correo electrónico").wait_for()

    # The confirmation email is in Spanish too.
    confirmation = email_to(
        live_platform.mail_dir, email, "Confirme su correo electrónico abriendo este enlace"
    )
    assert "Gracias por crear una cuenta en" in confirmation
    link = re.search(r"(http://\S+/accounts/confirm-email/\S+/)", confirmation)
    assert link, confirmation
    page.goto(link.group(1))
    page.get_by_role("button", name="Confirmar mi correo electrónico").click()
    page.wait_for_url(live_platform.url("neuro", "/"))
    page.get_by_role("link", name="Pedir una segunda opinión").click()

    # Step 1, its form and its errors.
    page.wait_for_url(re.compile(r".*/cases/[0-9a-f-]{36}/patient/$"))
    case_url = page.url.rsplit("patient/", 1)[0]
    assert page.get_by_test_id("wizard-count").inner_text() == "Paso 1 de 6"
    assert_accessible(page, "paso 1")
    page.get_by_role("button", name="Guardar y continuar").click()
    page.get_by_role("alert").wait_for()
    assert "Escriba la fecha de nacimiento del paciente." in page.get_by_role("alert").inner_text()
    page.get_by_label("Fecha de nacimiento del paciente").fill("1961-04-23")
    page.get_by_label("Mujer").check()
    page.get_by_label("acepto las condiciones").check()
    page.get_by_role("button", name="Guardar y continuar").click()

    # Step 2.
    page.wait_for_url(case_url + "question/")
    page.get_by_label("¿Qué diagnóstico o tratamiento desea que se revise?").fill(
        "Una lesión en la resonancia"
    )
    page.get_by_label("¿Qué le gustaría que respondiera el médico?").fill("¿Hace falta operar?")
    page.get_by_label("Pronto (hay que decidir en unas semanas)").check()
    page.get_by_role("button", name="Guardar y continuar").click()

    # Step 3: what the wizard's JavaScript writes is in Spanish as well.
    page.wait_for_url(case_url + "images/")
    page.locator("#image-uploader[data-ready]").wait_for(state="attached")
    page.set_input_files("#folder-input", str(cd_folder(tmp_path)))
    found = page.get_by_test_id("scan-summary")
    found.wait_for()
    assert found.inner_text() == "Hemos encontrado 2 estudios con 2 imágenes."
    assert page.get_by_test_id("scan-skipped").inner_text().startswith("1 archivo omitido: ")
    assert_accessible(page, "paso 3, antes de enviar")
    page.get_by_role("button", name="Enviar 2 archivos").click()
    page.get_by_text("Los 2 archivos se han enviado.").wait_for(timeout=30_000)
    received = page.get_by_test_id("received-summary")
    received.get_by_text("2 estudios, 2 series, 2 imágenes.").wait_for(timeout=90_000)

    # The switch: English, remembered on the next pages, then back to Spanish.
    page.get_by_role("button", name="Leer este sitio en English").click()
    page.wait_for_url(case_url + "images/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_test_id("wizard-count").inner_text() == "Step 3 of 6"
    page.get_by_role("link", name="Continue to reports").click()
    page.wait_for_url(case_url + "reports/")
    assert page.get_by_test_id("wizard-count").inner_text() == "Step 4 of 6"
    page.get_by_role("button", name="Read this site in Español").click()
    page.wait_for_url(case_url + "reports/")
    assert page.get_by_test_id("wizard-count").inner_text() == "Paso 4 de 6"
    assert_accessible(page, "paso 4")
    page.get_by_role("link", name="Continuar a revisar y enviar").click()

    # Step 5 and the case's first email.
    page.wait_for_url(case_url + "summary/")
    assert "2 archivos" in page.get_by_test_id("summary-images").inner_text()
    assert_accessible(page, "paso 5")
    page.get_by_role("button", name="Enviar mi solicitud").click()
    page.wait_for_url(case_url + "submitted/")
    page.get_by_role("heading", name="Su solicitud se ha enviado").wait_for()
    number = page.get_by_test_id("case-number").inner_text()
    received_email = email_to(live_platform.mail_dir, email, "ha recibido su solicitud de segunda opinión")
    assert "Hola, Lucía Fernández:" in received_email and f"Número de caso: {number}" in received_email
    page.get_by_role("link", name="Ver el estado de este caso").click()
    page.wait_for_url(case_url)
    assert page.get_by_test_id("case-status").inner_text() == "Recibida"
    assert_accessible(page, "estado del caso")
    context.close()
