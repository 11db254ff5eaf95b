"""Cases with real files for the workspace, imaging and payment tests, made inside the test's
transaction. A pytest plugin (see the root conftest), so every app's tests share one factory."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context
from reportlab.pdfgen import canvas

from accounts.models import User
from imaging.models import Report, Series, Study
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.staff import staff_force_login


def pdf_bytes(text: str = "Radiology report: no acute findings.") -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, text)
    page.showPage()
    page.save()
    return out.getvalue()


# A 1x1 PNG, enough to check the preview endpoint serves stored bytes.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def case_make(
    *,
    owner_email: str = "patient@neuro.example.com",
    status: str = Case.Status.SUBMITTED,
    submitted_days_ago: float = 1,
    with_files: bool = True,
    specialty: str = "neurology",
    modalities: str = "MR",
    patient_name: str = "Jane Testpatient",
    number: str | None = None,
) -> Case:
    """A case in the current schema (call inside ``schema_context``)."""
    owner = User.objects.get(email=owner_email)
    submitted = timezone.now() - dt.timedelta(days=submitted_days_ago)
    case = Case.objects.create(
        owner=owner,
        status=status,
        number=number or f"T-{uuid.uuid4().hex[:8].upper()}",
        patient_name=patient_name,
        question="Is the lesion on my MRI a tumour, and do I need surgery?",
        diagnosis_to_review="Low-grade glioma",
        history="Headaches for six months.",
        specialty=specialty,
        submitted_at=submitted if status != Case.Status.DRAFT else None,
    )
    if with_files:
        files = tenant_storage()
        study = Study.objects.create(
            case=case, study_instance_uid=f"1.2.3.{case.pk}", description="MRI brain", modalities=modalities
        )
        preview_key = f"previews/{uuid.uuid4().hex}.png"
        files.save(preview_key, io.BytesIO(PNG_1X1), len(PNG_1X1))
        Series.objects.create(
            study=study,
            series_instance_uid=f"1.2.3.{case.pk}.1",
            series_number=1,
            modality=modalities.split(",")[0],
            description="T1 axial",
            instance_count=20,
            preview_key=preview_key,
        )
        data = pdf_bytes()
        report_key = f"reports/{uuid.uuid4().hex}.pdf"
        files.save(report_key, io.BytesIO(data), len(data))
        Report.objects.create(
            case=case,
            content_type="application/pdf",
            storage_key=report_key,
            size=len(data),
            study=None,
            match_status=Report.Match.UNMATCHED,
        )
    return case


@pytest.fixture
def in_neuro(neuro: Institution) -> Iterator[Institution]:
    with schema_context(neuro.schema_name):
        yield neuro


@pytest.fixture
def make_case(neuro: Institution) -> Callable[..., Case]:
    def make(**kwargs: Any) -> Case:
        with schema_context(neuro.schema_name):
            return case_make(**kwargs)

    return make


@pytest.fixture
def staff_client(neuro: Institution) -> Callable[[str], Client]:
    """A client of the neuro site signed in as ``<role>@neuro.example.com`` (MFA passed)."""

    def make(role: str) -> Client:
        client = Client(HTTP_HOST="neuro.localhost")
        staff_force_login(client, f"{role}@neuro.example.com")
        return client

    return make


def user_in(neuro: Institution, email: str) -> User:
    with schema_context(neuro.schema_name):
        return User.objects.get(email=email)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run tasks queued after commit in this process, so their emails land in mail.outbox."""
    from config.celery_app import app as celery_app

    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
