"""A released opinion as FHIR: a DiagnosticReport with the signed PDF as its presentedForm,
referencing the Patient and an ImagingStudy per study reviewed, in one Bundle.

Built and validated with ``fhir.resources``: its R4B models (FHIR 4.3, which keeps R4's
DiagnosticReport, ImagingStudy and Patient unchanged for what is used here), so an invalid
resource fails here, not in the hospital's system. Only released opinions are ever served: a
draft or a signed-but-unreleased opinion does not exist for a machine client.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.patient import Patient

from imaging.models import Study
from intake.models import Case
from review.models import Opinion
from storage.tenant import tenant_storage
from tenants.schema import current_institution

LOINC = "http://loinc.org"
DICOM_UID = "urn:dicom:uid"
# LOINC 18748-4 "Diagnostic imaging study" is what a radiology consultation report is filed as.
REPORT_CODE = {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
SEX = {"F": "female", "M": "male", "O": "other"}


def _patient(case: Case, base_url: str) -> Patient:
    family, _, given = case.patient_name.strip().rpartition(" ")
    return Patient.model_validate(
        dict(
            id=f"patient-{case.public_id}",
            identifier=[patient_identifier(case, base_url)],
            name=[{"text": case.patient_name, "family": family or given, "given": [given] if family else []}],
            birthDate=case.patient_birth_date.isoformat() if case.patient_birth_date else None,
            gender=SEX.get(case.patient_sex, "unknown"),
        )
    )


def _imaging_study(study: Study, case: Case, base_url: str) -> ImagingStudy:
    modalities = [m for m in study.modalities.split(",") if m]
    return ImagingStudy.model_validate(
        dict(
            id=f"study-{study.pk}",
            status="available",
            subject={"reference": f"Patient/patient-{case.public_id}"},
            identifier=[{"system": DICOM_UID, "value": f"urn:oid:{study.study_instance_uid}"}],
            started=f"{study.study_date.isoformat()}" if study.study_date else None,
            modality=[
                {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": m} for m in modalities
            ],
            description=study.description or None,
            numberOfSeries=study.series_count,
            numberOfInstances=study.instance_count,
            endpoint=None,
            note=[{"text": f"DICOMweb: {base_url}/dicomweb/studies/{study.study_instance_uid}"}],
        )
    )


@dataclass
class OpinionResources:
    """The FHIR resources of one released opinion, validated, and its signed PDF."""

    report: DiagnosticReport
    patient: Patient
    studies: list[ImagingStudy]
    pdf: bytes


def patient_identifier(case: Case, base_url: str) -> dict[str, str]:
    """The patient as this institution knows them: one per case (we hold no hospital MRN)."""
    return {"system": f"{base_url}/patients", "value": str(case.public_id)}


def opinion_identifier(opinion: Opinion, base_url: str) -> dict[str, str]:
    """The opinion, for ever: what a FHIR server matches a pushed report against."""
    return {"system": f"{base_url}/opinions", "value": str(opinion.public_id)}


def opinion_fhir_resources(*, opinion: Opinion, base_url: str) -> OpinionResources:
    """Precondition: the opinion is released (the caller selected it so)."""
    assert opinion.released_at is not None and opinion.signed_at is not None
    case = opinion.case
    studies = list(Study.objects.included().filter(case=case).order_by("study_date", "id"))
    pdf = b""
    if opinion.pdf_key:
        from review.addenda import opinion_pdf_version_ensure

        # The current PDF: with every addendum (the report is then "appended").
        key = opinion_pdf_version_ensure(opinion=opinion, institution=current_institution())
        with tenant_storage().open(key) as stream:
            pdf = stream.read()
    conclusion = "\n\n".join(part for part in (opinion.impression, opinion.comments) if part)
    report = DiagnosticReport.model_validate(
        dict(
            id=f"opinion-{opinion.public_id}",
            status="appended" if opinion.addenda.exists() else "final",
            category=[
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}
            ],
            code={"coding": [REPORT_CODE], "text": "Second opinion"},
            subject={"reference": f"Patient/patient-{case.public_id}"},
            issued=opinion.released_at.isoformat(),
            effectiveDateTime=opinion.signed_at.isoformat(),
            resultsInterpreter=[
                {"display": ", ".join(filter(None, [opinion.signer_name, opinion.signer_credentials]))}
            ],
            identifier=[
                {"system": f"{base_url}/cases", "value": case.number or str(case.public_id)},
                opinion_identifier(opinion, base_url),
            ],
            imagingStudy=[{"reference": f"ImagingStudy/study-{study.pk}"} for study in studies],
            conclusion=conclusion or None,
            presentedForm=[
                {
                    "contentType": "application/pdf",
                    "language": "en",
                    "data": base64.b64encode(pdf).decode(),
                    "title": f"Second opinion {case.number or ''}".strip(),
                }
            ]
            if pdf
            else None,
        )
    )
    return OpinionResources(
        report=report,
        patient=_patient(case, base_url),
        studies=[_imaging_study(study, case, base_url) for study in studies],
        pdf=pdf,
    )


def opinion_fhir_bundle(*, opinion: Opinion, base_url: str) -> dict[str, Any]:
    """The released ``opinion`` as a FHIR Bundle (type collection), as JSON-ready data.
    Precondition: the opinion is released (the caller selected it so)."""
    parts = opinion_fhir_resources(opinion=opinion, base_url=base_url)
    assert opinion.released_at is not None
    resources = [parts.report, parts.patient, *parts.studies]
    bundle = Bundle.model_validate(
        dict(
            type="collection",
            timestamp=opinion.released_at.isoformat(),
            entry=[{"resource": resource} for resource in resources],
        )
    )
    return bundle.model_dump(mode="json", exclude_none=True)


def opinion_fhir_report(*, opinion: Opinion, base_url: str) -> dict[str, Any]:
    """Just the DiagnosticReport of ``opinion`` (what ``GET DiagnosticReport/<id>`` answers)."""
    bundle = opinion_fhir_bundle(opinion=opinion, base_url=base_url)
    return dict(bundle["entry"][0]["resource"])


def released_reports_searchset(*, opinions: list[Opinion], base_url: str) -> dict[str, Any]:
    reports = [opinion_fhir_report(opinion=opinion, base_url=base_url) for opinion in opinions]
    bundle = Bundle.model_validate(
        dict(
            type="searchset",
            total=len(reports),
            entry=[
                {
                    "fullUrl": f"{base_url}/fhir/DiagnosticReport/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in reports
            ],
        )
    )
    return bundle.model_dump(mode="json", exclude_none=True)
