"""The institution's consent, terms and privacy texts (issue 14, item 1): shown formatted and
sanitised, the consent text at the consent step, terms and privacy linked from every page's
footer, and the version of each text the patient accepted recorded on the case."""

from __future__ import annotations

import hashlib

from django.test import Client
from django_tenants.utils import tenant_context

from branding.models import Brand, LegalTextVersion
from branding.services import brand_update
from intake.models import Case, CaseConsent
from intake.tests.test_wizard import PATIENT_STEP, new_case, patient_user, signed_in
from tenants.models import Institution
from tests.staff import staff_force_login

TERMS = "<h2>Terms</h2><p>Be <strong>kind</strong>.</p><script>alert(1)</script>"


def _brand(institution: Institution, **texts: str) -> Brand:
    brand = Brand.objects.get(institution=institution)
    brand_update(brand=brand, values=texts)
    return brand


def test_it_shows_the_terms_formatted_and_without_scripts(neuro: Institution, neuro_client: Client) -> None:
    _brand(neuro, terms_text=TERMS)
    page = neuro_client.get("/terms/").content.decode()
    assert "<h2>Terms</h2><p>Be <strong>kind</strong>.</p>" in page
    assert "&lt;h2&gt;" not in page and "<script>alert(1)" not in page


def test_it_turns_a_plain_text_into_paragraphs(neuro: Institution, neuro_client: Client) -> None:
    _brand(neuro, privacy_text="We keep your data safe.\n\nAsk us for a copy & more.")
    page = neuro_client.get("/privacy/").content.decode()
    assert "<p>We keep your data safe.</p>" in page
    assert "<p>Ask us for a copy &amp; more.</p>" in page


def test_it_has_built_in_texts_when_the_institution_wrote_none(
    neuro: Institution, neuro_client: Client
) -> None:
    _brand(neuro, terms_text="", privacy_text="")
    assert "What a second opinion is" in neuro_client.get("/terms/").content.decode()
    assert "only to give the second opinion" in neuro_client.get("/privacy/").content.decode()


def test_it_shows_each_institution_its_own_texts(
    neuro: Institution, cancer: Institution, cancer_client: Client
) -> None:
    _brand(neuro, terms_text="<p>Northfield terms only.</p>")
    _brand(cancer, terms_text="<p>Cancer centre terms.</p>")
    page = cancer_client.get("/terms/").content.decode()
    assert "Cancer centre terms." in page and "Northfield" not in page


def test_it_links_terms_and_privacy_in_every_footer(neuro: Institution, neuro_client: Client) -> None:
    staff = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(staff, "coordinator@neuro.example.com")
    for client, path in ((neuro_client, "/"), (neuro_client, "/accounts/login/"), (staff, "/workspace/")):
        page = client.get(path, follow=True).content.decode()
        footer = page[page.index('<footer class="site-footer">') :]
        assert 'href="/terms/"' in footer and 'href="/privacy/"' in footer, path


def test_it_shows_the_consent_text_at_the_consent_step(neuro: Institution) -> None:
    _brand(neuro, consent_text="<p>I allow <em>Northfield</em> to read my scans.</p>")
    patient = patient_user(neuro)
    case = new_case(neuro, patient)
    page = signed_in(neuro, patient).get(f"/cases/{case.public_id}/patient/").content.decode()
    consent = page[page.index('data-testid="consent-text"') :]
    assert "<p>I allow <em>Northfield</em> to read my scans.</p>" in consent
    assert 'href="/terms/"' in consent and 'href="/privacy/"' in consent


def test_it_records_the_versions_the_patient_accepted(neuro: Institution) -> None:
    _brand(neuro, consent_text="<p>Consent, first wording.</p>", terms_text="<p>Terms.</p>")
    patient = patient_user(neuro)
    case = new_case(neuro, patient)
    client = signed_in(neuro, patient)
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    with tenant_context(neuro):
        accepted = {row.kind: row for row in CaseConsent.objects.filter(case=case)}
    assert set(accepted) == {"consent", "terms", "privacy"}
    first = LegalTextVersion.objects.get(
        institution=neuro, kind="consent", version=accepted["consent"].version
    )
    assert first.text == "<p>Consent, first wording.</p>"
    assert accepted["consent"].sha256 == hashlib.sha256(first.text.encode()).hexdigest()

    # Saving the step again records nothing new; a changed text is a new version, and accepting
    # it again is recorded beside the first acceptance.
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    _brand(neuro, consent_text="<p>Consent, second wording.</p>")
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    with tenant_context(neuro):
        consents = list(CaseConsent.objects.filter(case=case, kind="consent").order_by("version"))
    assert [c.version for c in consents] == [first.version, first.version + 1]
    assert (
        LegalTextVersion.objects.get(institution=neuro, kind="consent", version=first.version + 1).text
        == "<p>Consent, second wording.</p>"
    )


def test_it_numbers_versions_per_institution_and_keeps_unchanged_texts(
    neuro: Institution, cancer: Institution
) -> None:
    _brand(neuro, terms_text="<p>A</p>")
    before = LegalTextVersion.objects.filter(institution=neuro, kind="terms").count()
    _brand(neuro, terms_text="<p>A</p>")  # unchanged: no new version
    _brand(cancer, terms_text="<p>B</p>")
    assert LegalTextVersion.objects.filter(institution=neuro, kind="terms").count() == before


def test_it_shows_staff_which_versions_were_accepted(neuro: Institution) -> None:
    _brand(neuro, consent_text="<p>Consent for staff to see.</p>")
    patient = patient_user(neuro)
    case = new_case(neuro, patient)
    signed_in(neuro, patient).post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    with tenant_context(neuro):
        Case.objects.filter(pk=case.pk).update(status=Case.Status.SUBMITTED, number="NNI-T14001")
        version = CaseConsent.objects.get(case=case, kind="consent").version
    staff = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(staff, "coordinator@neuro.example.com")
    page = staff.get(f"/workspace/cases/{case.public_id}/").content.decode()
    consents = page[page.index('data-testid="consents"') :]
    assert f"Consent v{version}" in consents[:300] and "Terms v" in consents[:300]
