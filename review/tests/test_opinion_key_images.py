"""Key images the reviewer marks in the viewer are printed in the signed opinion's PDF, with the
window the reviewer chose; an opinion without key images has no such section."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.test import Client, TestCase
from django_tenants.utils import schema_context
from pypdf import PdfReader

from imaging.models import ImageAnnotation, Instance
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.models import Opinion
from review.tests.test_opinion import OPINION
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.cases import user_in
from tests.dicomweb_cases import case_with_study, demo_study


def _signed_pdf(reviewer: Client, case: Case) -> bytes:
    base = f"/workspace/cases/{case.public_id}/opinion"
    reviewer.post(f"{base}/draft", OPINION)
    with TestCase.captureOnCommitCallbacks(execute=True):
        reviewer.post(f"{base}/sign", {"secret": DEMO_PASSWORD})
    with schema_context("neuro"):
        return tenant_storage().read_bytes(Opinion.objects.get(case=case).pdf_key)


def _case() -> Case:
    _, series = demo_study(ct_slices=3)
    return case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=series[:2],
        reviewer_email="reviewer1@neuro.example.com",
    )


def test_it_prints_the_key_images_in_the_opinion_pdf(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    case = _case()
    reviewer = user_in(neuro, "reviewer1@neuro.example.com")
    with schema_context("neuro"):
        ct, mr = (
            Instance.objects.filter(series__study__case=case, series__series_number=n).first() for n in (1, 2)
        )
        assert ct is not None and mr is not None
        for instance, window in ((ct, (40.0, 400.0)), (mr, None)):
            ImageAnnotation.objects.create(
                case=case,
                instance=instance,
                kind=ImageAnnotation.Kind.KEY_IMAGE,
                author=reviewer,
                window_center=window[0] if window else None,
                window_width=window[1] if window else None,
            )
        # A measurement is not a key image: it is not printed.
        ImageAnnotation.objects.create(
            case=case, instance=ct, kind=ImageAnnotation.Kind.LENGTH, points=[[1, 1], [5, 5]], author=reviewer
        )
    pdf = PdfReader(io.BytesIO(_signed_pdf(staff_client("reviewer1"), case)))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Key images" in text
    assert "Figure 1. CT · CT head axial · series 1 · image 1" in text
    assert "Figure 2. MR · MR JPEG 2000 · series 2 · image 1" in text
    assert "Figure 3" not in text
    assert sum(len(page.images) for page in pdf.pages) == 3  # the institution's logo, two key images


def test_it_leaves_the_section_out_without_key_images(staff_client: Callable[[str], Client]) -> None:
    case = _case()
    pdf = PdfReader(io.BytesIO(_signed_pdf(staff_client("reviewer1"), case)))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Key images" not in text and "low-grade glioma" in text
    assert sum(len(page.images) for page in pdf.pages) == 1  # the logo
