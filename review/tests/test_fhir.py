# mypy: disable-error-code="union-attr, index, arg-type, attr-defined, call-overload"
# (fhir.resources models type every field Optional; the assertions below are what checks them.)
"""Released opinions read back as FHIR R4: a valid Bundle (DiagnosticReport with the signed PDF,
the Patient, an ImagingStudy per study), for keys with the FHIR permission and coordinators."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from django.test import Client, TestCase
from django.utils import timezone
from django_tenants.utils import schema_context
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from audit.models import AuditEvent
from imaging.models import Study
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.models import CaseAssignment, Opinion
from review.services import opinion_draft_save, opinion_release, opinion_sign
from tenants.models import Institution
from tests.cases import user_in
from tests.staff import staff_force_login

HOST = "neuro.localhost"
OPINION = {
    "question_restated": "Is surgery needed?",
    "findings": "A 2 cm lesion in the left frontal lobe.",
    "impression": "Most consistent with a low-grade glioma.",
    "agreement": "agree",
    "recommendation": "surgery",
    "comments": "Discuss resection with your neurosurgeon.",
}


def _released(neuro: Institution, make_case: Callable[..., Case], *, release: bool = True) -> Opinion:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        reviewer = user_in(neuro, "reviewer1@neuro.example.com")
        CaseAssignment.objects.create(case=case, reviewer=reviewer, assigned_at=case.created)
        opinion_draft_save(case=case, author=reviewer, data=OPINION)
        with TestCase.captureOnCommitCallbacks(execute=True):
            opinion_sign(case=case, signer=reviewer, secret=DEMO_PASSWORD, institution=neuro)
        if release:
            opinion_release(case=case, by=user_in(neuro, "coordinator@neuro.example.com"))
        return Opinion.objects.select_related("case").get(case=case)


def _key(scopes: list[str]) -> str:
    admin = Client(HTTP_HOST=HOST)
    staff_force_login(admin, "admin@neuro.example.com")
    page = admin.post("/settings/integrations/", {"name": "Hospital EHR", "scopes": scopes}).content.decode()
    return page.split('data-testid="secret">')[1].split("<")[0]


def test_it_reads_a_released_opinion_as_a_valid_fhir_bundle(
    neuro: Institution, make_case: Callable[..., Case]
) -> None:
    opinion = _released(neuro, make_case)
    ehr = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {_key(['fhir.read'])}")
    response = ehr.get(f"/fhir/Bundle/opinion-{opinion.public_id}")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    bundle = Bundle.model_validate(response.json())  # raises if not valid FHIR
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds[:2] == ["DiagnosticReport", "Patient"] and kinds.count("ImagingStudy") == 1
    report = bundle.entry[0].resource
    assert report.status == "final" and report.conclusion.startswith(
        "Most consistent with a low-grade glioma"
    )
    # The wire carries base64 (FHIR base64Binary); the model hands back the PDF's bytes.
    assert (
        base64.b64decode(response.json()["entry"][0]["resource"]["presentedForm"][0]["data"])[:4] == b"%PDF"
    )
    assert report.presentedForm[0].data[:4] == b"%PDF"
    assert bundle.entry[1].resource.name[0].text == "Jane Testpatient"
    assert report.imagingStudy[0].reference == f"ImagingStudy/{bundle.entry[2].resource.id}"
    single = DiagnosticReport.model_validate(
        ehr.get(f"/fhir/DiagnosticReport/opinion-{opinion.public_id}").json()
    )
    assert single.id == report.id
    found = Bundle.model_validate(
        ehr.get("/fhir/DiagnosticReport", {"identifier": opinion.case.number}).json()
    )
    assert found.total == 1 and found.entry[0].resource.id == report.id
    with schema_context("neuro"):
        read = AuditEvent.objects.filter(action="fhir.read", case_id=opinion.case_id).latest("id")
        assert read.allowed and read.detail["credential_name"] == "Hospital EHR"


def test_it_never_shows_an_unreleased_opinion(neuro: Institution, make_case: Callable[..., Case]) -> None:
    opinion = _released(neuro, make_case, release=False)
    ehr = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {_key(['fhir.read'])}")
    assert ehr.get(f"/fhir/Bundle/opinion-{opinion.public_id}").status_code == 404
    assert ehr.get("/fhir/DiagnosticReport", {"identifier": opinion.case.number}).json()["total"] == 0


def test_it_refuses_keys_without_the_permission_patients_and_strangers(
    neuro: Institution, make_case: Callable[..., Case]
) -> None:
    opinion = _released(neuro, make_case)
    url = f"/fhir/Bundle/opinion-{opinion.public_id}"
    dicomweb_only = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {_key(['dicomweb.read'])}")
    assert dicomweb_only.get(url).status_code == 401
    assert Client(HTTP_HOST=HOST).get(url).status_code == 401
    for email in ("patient@neuro.example.com", "reviewer2@neuro.example.com"):
        person = Client(HTTP_HOST=HOST)
        staff_force_login(person, email)
        assert person.get(url).status_code == 401
    coordinator = Client(HTTP_HOST=HOST)
    staff_force_login(coordinator, "coordinator@neuro.example.com")
    assert coordinator.get(url).status_code == 200
    stranger = Client(HTTP_HOST="cancer.localhost", HTTP_AUTHORIZATION=f"Bearer {_key(['fhir.read'])}")
    assert stranger.get(url).status_code == 401  # a neuro key means nothing at cancer
    with schema_context("neuro"):
        assert (
            AuditEvent.objects.filter(action="fhir.read", case_id=opinion.case_id, allowed=False).count() >= 4
        )


pytestmark = pytest.mark.django_db


def test_a_study_left_out_of_the_case_is_not_in_the_result(
    neuro: Institution, make_case: Callable[..., Case]
) -> None:
    opinion = _released(neuro, make_case)
    with schema_context(neuro.schema_name):
        Study.objects.filter(case=opinion.case).update(excluded_at=timezone.now())
    ehr = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {_key(['fhir.read'])}")
    bundle = Bundle.model_validate(ehr.get(f"/fhir/Bundle/opinion-{opinion.public_id}").json())
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert "ImagingStudy" not in kinds


def test_it_marks_an_opinion_with_an_addendum_appended_and_sends_its_current_pdf(
    neuro: Institution, make_case: Callable[..., Case]
) -> None:
    import io

    from pypdf import PdfReader

    from review.addenda import opinion_addendum_sign
    from review.fhir import opinion_fhir_bundle

    opinion = _released(neuro, make_case)
    with schema_context(neuro.schema_name):
        with TestCase.captureOnCommitCallbacks(execute=True):
            opinion_addendum_sign(
                case=opinion.case,
                signer=user_in(neuro, "reviewer1@neuro.example.com"),
                secret=DEMO_PASSWORD,
                text="Histology confirms a low-grade glioma.",
                institution=neuro,
            )
        bundle = Bundle.model_validate(opinion_fhir_bundle(opinion=opinion, base_url="https://neuro.example"))
    report = bundle.entry[0].resource
    assert report.status == "appended"
    pdf = PdfReader(io.BytesIO(report.presentedForm[0].data))
    assert "Histology confirms" in "\n".join(page.extract_text() for page in pdf.pages)
