"""The pages issue 14 changed, in Chromium on the live server, at desktop size and on a
390×844 phone: each passes axe (no serious or critical WCAG 2.1 AA violation) and does not
scroll sideways on the phone. The portal home of every demo colour scheme, terms and privacy
linked from every footer, the consent text at step 1, the images step as a phone user sees it
(with the emailed link to continue on a computer), withdrawing and deleting a request, the
opinion with its summary first, and the upload history cleared when the patient signs out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from branding.models import Brand
from institutions.management.commands.seed_demo import DEMO_INSTITUTIONS, DEMO_PASSWORD
from intake.models import Case
from review.models import Opinion
from tests.browser.test_intake_wizard import PHONE, assert_accessible
from tests.live import LiveServer
from tests.staff import staff_force_login

pytestmark = pytest.mark.browser

PATIENT = "patient@neuro.example.com"
SUMMARY = "Your scan shows a slow-growing tumour that can be removed safely."


def _signed_in(browser: Any, live: LiveServer, slug: str, email: str, **options: Any) -> Any:
    """A page of a new browser context, signed in as ``email`` through the login form."""
    page = browser.new_context(**options).new_page()
    page.goto(live.url(slug, "/accounts/login/"))
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form:has(input[name=login]) button[type=submit]")
    page.wait_for_url(live.url(slug, "/"))
    return page


def _staff_page(browser: Any, live: LiveServer, slug: str, email: str) -> Any:
    """A page holding a staff session that passed the second factor (made server-side, as
    tests/staff.py does, so no authenticator code is spent)."""
    client = Client(HTTP_HOST=f"{slug}.{settings.PLATFORM_DOMAIN}")
    staff_force_login(client, email)
    context = browser.new_context()
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live.url(slug),
            }
        ]
    )
    return context.new_page()


@pytest.fixture(scope="module")
def cases(live_platform: LiveServer, django_db_blocker: Any) -> Iterator[dict[str, Case]]:
    """The demo patient's cases, committed so the live server sees them: a new draft (step 1),
    a draft past consent (images step), a sent case, and one whose opinion is released."""
    with django_db_blocker.unblock(), schema_context("neuro"):
        owner = User.objects.get(email=PATIENT)
        reviewer = User.objects.get(email="reviewer1@neuro.example.com")
        base = {"owner": owner, "patient_name": "Pat Patient", "patient_email": PATIENT}
        made = {
            "new": Case.objects.create(**base),
            "draft": Case.objects.create(**base, consented_at=timezone.now(), wizard_step="images"),
            "sent": Case.objects.create(
                **base, status=Case.Status.SUBMITTED, number="NNI-B14001", submitted_at=timezone.now()
            ),
            "released": Case.objects.create(
                **base, status=Case.Status.RELEASED, number="NNI-B14002", submitted_at=timezone.now()
            ),
        }
        Opinion.objects.create(
            case=made["released"],
            author=reviewer,
            patient_summary=SUMMARY,
            findings="A 2 cm non-enhancing lesion in the left frontal lobe.",
            impression="Most consistent with a low-grade glioma.",
            agreement="agree",
            recommendation="surgery",
            signed_at=timezone.now(),
            signed_by=reviewer,
            signer_name="Dr. Robin Reyes",
            signer_credentials="MD, Neuroradiology",
            signer_title="Consultant neuroradiologist",
            released_at=timezone.now(),
        )
        brand = Brand.objects.get(institution__slug="neuro")
        original = brand.consent_text
        Brand.objects.filter(pk=brand.pk).update(
            consent_text="<h2>Your consent</h2>"
            "<p>You allow <strong>Northfield</strong> to read the scans.</p>"
        )
    yield made
    with django_db_blocker.unblock(), schema_context("neuro"):
        Case.objects.filter(pk__in=[case.pk for case in made.values()]).delete()
        Brand.objects.filter(pk=brand.pk).update(consent_text=original)


def _check(page: Any, where: str) -> None:
    assert_accessible(page, where)
    page.set_viewport_size(PHONE)
    assert_accessible(page, f"{where} (phone)")


@pytest.mark.parametrize("slug", [demo.slug for demo in DEMO_INSTITUTIONS])
def test_it_keeps_every_demo_portal_home_accessible(live_platform: LiveServer, page: Any, slug: str) -> None:
    page.goto(live_platform.url(slug))
    _check(page, f"{slug} portal home")
    notice = page.locator("[data-testid=price-notice]")
    if notice.count():  # the charging demo: its notice is dark on pale, and tells the truth
        colour = notice.evaluate("el => getComputedStyle(el).color")
        assert colour == "rgb(20, 32, 43)", colour
        # The live server has no Stripe key: card payment is impossible, and not promised.
        assert notice.get_attribute("data-payment") in ("waivers", "unavailable")
        assert "pay by card" not in notice.inner_text()


def test_it_shows_terms_and_privacy_formatted_and_linked_from_every_footer(
    browser: Any, live_platform: LiveServer, page: Any
) -> None:
    page.goto(live_platform.url("neuro"))
    page.locator("footer").get_by_role("link", name="Terms").click()
    page.wait_for_url("**/terms/")
    assert page.locator("[data-testid=terms] h2").count() >= 1  # formatted, not escaped markup
    assert "&lt;" not in page.inner_text("[data-testid=terms]")
    _check(page, "terms")
    page.locator("footer").get_by_role("link", name="Privacy").click()
    page.wait_for_url("**/privacy/")
    _check(page, "privacy")

    staff = _staff_page(browser, live_platform, "cancer", "reviewer1@cancer.example.com")
    staff.goto(live_platform.url("cancer", "/workspace/"))
    assert staff.locator("footer a[href='/terms/']").count() == 1
    assert staff.locator("footer a[href='/privacy/']").count() == 1


def test_it_shows_the_consent_text_at_step_one(
    browser: Any, live_platform: LiveServer, cases: dict[str, Case]
) -> None:
    page = _signed_in(browser, live_platform, "neuro", PATIENT)
    page.goto(live_platform.url("neuro", f"/cases/{cases['new'].public_id}/patient/"))
    consent = page.locator("[data-testid=consent-text]")
    assert consent.locator("h2").inner_text() == "Your consent"
    assert "You allow Northfield to read the scans." in consent.inner_text()
    _check(page, "consent step")


def test_it_tells_a_phone_user_what_they_can_do(
    browser: Any, live_platform: LiveServer, cases: dict[str, Case]
) -> None:
    page = _signed_in(browser, live_platform, "neuro", PATIENT, viewport=PHONE)
    page.goto(live_platform.url("neuro", f"/cases/{cases['draft'].public_id}/images/"))
    assert page.locator("[data-testid=phone-help]").is_visible()
    assert not page.get_by_text("Choose a folder").is_visible()
    assert page.get_by_text("Choose files or a zip").is_visible()
    assert not page.get_by_text("choose its whole folder").is_visible()
    assert_accessible(page, "images step (phone)")
    page.click("[data-testid=email-continue-link]")
    page.wait_for_selector(f"text=We have emailed a link to {PATIENT}")
    assert page.url.endswith(f"/cases/{cases['draft'].public_id}/images/")

    desktop = _signed_in(browser, live_platform, "neuro", PATIENT)
    desktop.goto(live_platform.url("neuro", f"/cases/{cases['draft'].public_id}/images/"))
    assert desktop.get_by_text("Choose a folder").is_visible()
    assert not desktop.locator("[data-testid=phone-help]").is_visible()


def test_it_shows_the_refund_rules_before_withdrawing(
    browser: Any, live_platform: LiveServer, cases: dict[str, Case]
) -> None:
    page = _signed_in(browser, live_platform, "neuro", PATIENT)
    page.goto(live_platform.url("neuro", f"/cases/{cases['sent'].public_id}/"))
    page.click("[data-testid=withdraw-link]")
    page.wait_for_url("**/withdraw/")
    assert "nothing is charged or refunded" in page.inner_text("[data-testid=refund-rules]")
    _check(page, "withdraw")
    page.click("[data-testid=confirm-withdraw]")
    page.wait_for_url(f"**/cases/{cases['sent'].public_id}/")
    assert page.inner_text("[data-testid=case-status]") == "Withdrawn"


def test_it_deletes_a_draft(browser: Any, live_platform: LiveServer, cases: dict[str, Case]) -> None:
    page = _signed_in(browser, live_platform, "neuro", PATIENT, viewport=PHONE)
    page.goto(live_platform.url("neuro", f"/cases/{cases['new'].public_id}/patient/"))
    page.click("[data-testid=delete-draft]")
    page.wait_for_url("**/delete/")
    assert_accessible(page, "delete draft (phone)")
    page.click("[data-testid=confirm-delete]")
    page.wait_for_url("**/cases/")
    with schema_context("neuro"):
        assert not Case.objects.filter(pk=cases["new"].pk).exists()


def test_it_shows_the_patient_summary_first(
    browser: Any, live_platform: LiveServer, cases: dict[str, Case]
) -> None:
    page = _signed_in(browser, live_platform, "neuro", PATIENT)
    page.goto(live_platform.url("neuro", f"/opinions/{cases['released'].public_id}/"))
    summary = page.locator("[data-testid=patient-summary]")
    assert SUMMARY in summary.inner_text()
    text = page.inner_text("[data-testid=patient-opinion]")
    assert text.index(SUMMARY) < text.index("non-enhancing lesion")
    _check(page, "patient opinion")


def test_it_clears_the_upload_history_on_sign_out(browser: Any, live_platform: LiveServer) -> None:
    page = _signed_in(browser, live_platform, "neuro", PATIENT)
    page.goto(live_platform.url("neuro"))
    page.evaluate(
        """() => {
            localStorage.setItem("secondread:pending:1234:imaging", "3");
            localStorage.setItem("tus::secondread|1234|imaging|CD/IMG0001::42", "{}");
            sessionStorage.setItem("tus::secondread|1234|reports|a.pdf::1", "{}");
            localStorage.setItem("unrelated", "kept");
        }"""
    )
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    left = page.evaluate("() => [...Object.keys(localStorage), ...Object.keys(sessionStorage)].sort()")
    assert left == ["unrelated"], left
