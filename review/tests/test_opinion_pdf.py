"""The signed opinion a local doctor can use (issue 14, item 8): the PDF names the patient and
their birth date, lists the studies reviewed, says who signed it (name, credentials, role) and
where the institution is, and starts with the plain-language summary the patient reads first."""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Callable

import pytest
from django.test import Client, TestCase
from django.utils import timezone
from django_tenants.utils import schema_context
from PIL import Image
from pypdf import PdfReader

from accounts.models import User
from branding.models import Brand
from branding.services import brand_logo_set, brand_update
from imaging.models import Study
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.models import CaseAssignment, Opinion, ReviewerProfile
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.cases import user_in

OPINION = {
    "patient_summary": "Your scan shows a slow-growing tumour. Surgery is a good option.",
    "question_restated": "Is the lesion a tumour, and is surgery needed?",
    "findings": "A 2 cm non-enhancing lesion in the left frontal lobe.",
    "impression": "Most consistent with a low-grade glioma.",
    "agreement": "agree",
    "recommendation": "surgery",
    "comments": "",
}


@pytest.fixture
def assigned_case(neuro: Institution, make_case: Callable[..., Case]) -> Case:
    case = make_case(status=Case.Status.ASSIGNED, patient_name="Robert Alvarez")
    with schema_context(neuro.schema_name):
        Case.objects.filter(pk=case.pk).update(patient_birth_date=datetime.date(1961, 4, 23))
        Study.objects.filter(case=case).update(
            study_date=datetime.date(2026, 3, 2), accession_number="ACC-77123"
        )
        Study.objects.create(
            case=case,
            study_instance_uid=f"1.2.3.{case.pk}.9",
            study_date=datetime.date(2025, 11, 14),
            description="CT head without contrast",
            modalities="CT",
            accession_number="",
        )
        Study.objects.create(  # another person's study, left out of the case: not reviewed
            case=case,
            study_instance_uid=f"1.2.3.{case.pk}.10",
            description="MR of someone else",
            modalities="MR",
            excluded_at=timezone.now(),
        )
        reviewer = user_in(neuro, "reviewer1@neuro.example.com")
        ReviewerProfile.objects.filter(user=reviewer).update(title="Consultant neuroradiologist")
        CaseAssignment.objects.create(case=case, reviewer=reviewer, assigned_at=case.created)
    return case


def _sign(reviewer: Client, case: Case) -> None:
    reviewer.post(f"/workspace/cases/{case.public_id}/opinion/draft", OPINION)
    with TestCase.captureOnCommitCallbacks(execute=True):
        reviewer.post(f"/workspace/cases/{case.public_id}/opinion/sign", {"secret": DEMO_PASSWORD})


def _pdf(neuro: Institution, case: Case) -> tuple[Opinion, bytes]:
    with schema_context(neuro.schema_name):
        opinion = Opinion.objects.get(case=case)
        return opinion, tenant_storage().read_bytes(opinion.pdf_key)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_it_prints_what_a_local_doctor_needs(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    brand = Brand.objects.get(institution=neuro)
    brand_update(brand=brand, values={"postal_address": "12 Lakeside Drive\nNorthfield, NF 01234"})
    _sign(staff_client("reviewer1"), assigned_case)
    opinion, pdf = _pdf(neuro, assigned_case)
    text = _text(pdf)
    assert "Robert Alvarez" in text
    assert "23 April 1961" in text
    assert "12 Lakeside Drive" in text and "Northfield, NF 01234" in text
    # The studies reviewed, each with its date, modality, description and accession number.
    assert "2 March 2026" in text and "MRI brain" in text and "ACC-77123" in text
    assert "14 November 2025" in text and "CT head without contrast" in text
    assert "someone else" not in text
    assert "Dr. Robin Reyes, MD, Neuroradiology (Consultant neuroradiologist)" in text
    assert opinion.signer_title == "Consultant neuroradiologist"
    # The plain-language summary comes first, before the findings.
    assert text.index("slow-growing tumour") < text.index("non-enhancing lesion")


def test_it_prints_the_pdf_in_the_patients_language(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    with schema_context(neuro.schema_name):
        User.objects.filter(pk=assigned_case.owner_id).update(language="es")
    _sign(staff_client("reviewer1"), assigned_case)  # the reviewer's pages are in English
    _, pdf = _pdf(neuro, assigned_case)
    text = _text(pdf)
    assert "Fecha de nacimiento" in text and "23 de abril de 1961" in text
    assert "Estudios revisados" in text and "2 de marzo de 2026" in text
    assert "Firmado electrónicamente por" in text
    assert "slow-growing tumour" in text  # the reviewer's words stay as written


def test_it_shows_the_summary_first_to_the_patient(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client], neuro_client: Client
) -> None:
    reviewer = staff_client("reviewer1")
    _sign(reviewer, assigned_case)
    reviewer.post(f"/workspace/cases/{assigned_case.public_id}/opinion/release")
    with schema_context(neuro.schema_name):
        neuro_client.force_login(assigned_case.owner)
    page = neuro_client.get(f"/opinions/{assigned_case.public_id}/").content.decode()
    assert 'data-testid="patient-summary"' in page
    assert page.index("slow-growing tumour") < page.index("non-enhancing lesion")
    assert "(Consultant neuroradiologist)" in page


def test_it_keeps_the_logos_shape_in_the_pdf(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (300, 100), (20, 60, 120)).save(out, format="PNG")
    brand_logo_set(brand=Brand.objects.get(institution=neuro), data=out.getvalue())
    _sign(staff_client("reviewer1"), assigned_case)
    _, pdf = _pdf(neuro, assigned_case)
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    (image,) = page.images
    assert image.image is not None and image.image.size == (300, 100)
    # Drawn 3:1 as the logo is: the scale of the image's placement matrix ("w 0 0 h x y cm").
    contents = page.get_contents()
    assert contents is not None
    content = contents.get_data().decode("latin-1")
    sizes = [
        (float(w), float(h)) for w, h in re.findall(r"([\d.]+) 0 0 ([\d.]+) [\d.-]+ [\d.-]+ cm", content)
    ]
    assert any(h and abs(w / h - 3.0) < 0.05 for w, h in sizes), sizes
