"""Are these the declared patient's images? Names as DICOM writes them and people type them,
birth dates and sex, compared at ingest and again when the declared patient changes."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pydicom
import pytest
from django_tenants.utils import tenant_context

from imaging.identity import (
    MATCHES,
    MISMATCH,
    UNKNOWN,
    DeclaredPatient,
    FilesPatient,
    case_identity_mismatches,
    identity_compare,
    names_compare,
    study_identity_hint,
)
from imaging.ingest.pipeline import upload_ingest_run
from imaging.models import Study
from imaging.tests.fixtures.ingest import case_make, dicom_renamed, sample_path, upload_make
from intake.models import Case
from intake.services import case_patient_save
from tenants.models import Institution


@pytest.mark.parametrize(
    ("in_files", "declared"),
    [
        ("ALVAREZ^ROBERT", "Robert Alvarez"),
        ("Alvarez^Robert^James^^", "Robert Alvarez"),  # a middle name the patient left out
        ("ALVAREZ^ROBERT", "Robert J. Alvarez"),  # a middle initial the files left out
        ("ALVAREZ^R", "Robert Alvarez"),  # an initial for the given name
        ("ÁLVAREZ^ROBERTO", "roberto alvarez"),  # accents and case
        ("ALVAREZ, ROBERT", "Robert Alvarez"),  # a comma form written into the PN
        ("ALVAREZ^ROBERT", "Alvarez, Robert"),  # a comma form typed
        ("GARCIA LOPEZ^MARIA JOSE", "María José García"),  # one of two family names
        ("GARCÍA-LÓPEZ^MARÍA", "Maria Garcia Lopez"),
        ("O'BRIEN^SEAN", "Seán OBrien"),
        ("ROBERT^ALVAREZ", "Robert Alvarez"),  # given and family swapped by the writer
        ("MR. ALVAREZ^ROBERT", "Robert Alvarez"),
        ("ALVAREZ^ROBERT=アルバレス^ロバート", "Robert Alvarez"),  # ideographic group ignored
        ("Robert Alvarez", "Robert Alvarez"),  # no separators at all
    ],
)
def test_it_matches_the_same_name_written_differently(in_files: str, declared: str) -> None:
    assert names_compare(in_files, declared) == MATCHES


@pytest.mark.parametrize(
    ("in_files", "declared"),
    [
        ("DOE^JANE", "Robert Alvarez"),
        ("ALVAREZ^MARIA", "Robert Alvarez"),  # same family, another person
        ("SMITH^ROBERT", "Robert Alvarez"),
        ("CompressedSamples^CT1", "Pat Patient"),
        ("Jane Doe", "Robert Alvarez"),
    ],
)
def test_it_tells_another_persons_name(in_files: str, declared: str) -> None:
    assert names_compare(in_files, declared) == MISMATCH


@pytest.mark.parametrize("in_files", ["", "^", "ANONYMOUS", "Anonymized", "12345", "^^^^"])
def test_it_cannot_compare_an_anonymised_name(in_files: str) -> None:
    assert names_compare(in_files, "Robert Alvarez") == UNKNOWN


ROBERT = DeclaredPatient(name="Robert Alvarez", birth_date=datetime.date(1961, 4, 23), sex="M")


def test_it_weighs_name_birth_date_and_sex_together() -> None:
    def verdict(name: str, born: str, sex: str) -> tuple[str, str]:
        result = identity_compare(files=FilesPatient(name, born, sex), declared=ROBERT)
        return result.status, result.reason

    assert verdict("ALVAREZ^ROBERT", "19610423", "M") == (MATCHES, "same name, birth date and sex")
    assert verdict("DOE^JANE", "19580312", "F") == (MISMATCH, "different name, birth date and sex")
    assert verdict("ALVAREZ^ROBERT", "19610424", "M") == (MISMATCH, "different birth date")
    assert verdict("ANONYMOUS", "19610423", "") == (MATCHES, "same birth date")
    assert verdict("ANONYMOUS", "", "") == (UNKNOWN, "nothing to compare")
    assert verdict("", "19000101", "O") == (UNKNOWN, "nothing to compare")  # placeholder date
    assert verdict("ALVAREZ^ROBERT", "1961.04.23", "M")[0] == MATCHES  # an old writer's DA
    # A patient who declares "other" is never told their sex differs.
    other = DeclaredPatient(name="Robert Alvarez", birth_date=None, sex="O")
    assert identity_compare(files=FilesPatient("ALVAREZ^ROBERT", "", "F"), declared=other).status == MATCHES


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        case = case_make("neuro")
        case.patient_name = "Robert Alvarez"
        case.patient_birth_date = datetime.date(1961, 4, 23)
        case.patient_sex = "M"
        case.save()
        yield case


def _ingest(case: Case, data: bytes, path: str) -> None:
    upload_ingest_run(upload_id=upload_make(case, data, path=path).pk)


def test_it_flags_a_cd_of_another_patient_at_ingest(case: Case) -> None:
    jane = dicom_renamed("MR_small.dcm", PatientName="DOE^JANE", PatientBirthDate="19580312", PatientSex="F")
    own = dicom_renamed(
        "CT_small.dcm",
        PatientName="Alvarez^Robert^J",
        PatientBirthDate="19610423",
        PatientSex="M",
        StudyInstanceUID=pydicom.uid.generate_uid(),
    )
    _ingest(case, jane, "DICOM/IM1")
    _ingest(case, own, "DICOM/IM2")
    by_modality = {study.modalities: study for study in Study.objects.filter(case=case)}
    assert by_modality["MR"].identity_status == MISMATCH
    assert by_modality["MR"].identity_reason == "different name, birth date and sex"
    assert study_identity_hint(by_modality["MR"]) == "D. J., born 1958"
    assert by_modality["CT"].identity_status == MATCHES
    assert case_identity_mismatches(case=case) == [by_modality["MR"]]


def test_it_flags_pydicoms_own_test_patients(case: Case) -> None:
    _ingest(case, sample_path("CT_small.dcm").read_bytes(), "CT")  # CompressedSamples^CT1
    study = Study.objects.get(case=case)
    assert study.identity_status == MISMATCH
    assert "name" in study.identity_reason


def test_it_compares_again_when_the_declared_patient_changes(case: Case) -> None:
    jane = dicom_renamed("MR_small.dcm", PatientName="DOE^JANE", PatientBirthDate="19580312", PatientSex="F")
    _ingest(case, jane, "IM1")
    assert Study.objects.get(case=case).identity_status == MISMATCH
    # The patient notices they typed their mother's details for their own CD... or the reverse.
    case_patient_save(
        case=case,
        submitter_relation=Case.Relation.FAMILY,
        submitter_name="Robert Alvarez",
        patient_name="Jane Doe",
        patient_birth_date=datetime.date(1958, 3, 12),
        patient_sex="F",
        patient_email="jane@example.com",
        patient_phone="",
        consent=True,
    )
    study = Study.objects.get(case=case)
    assert (study.identity_status, study.identity_reason) == (MATCHES, "same name, birth date and sex")
    assert case_identity_mismatches(case=case) == []


def test_an_excluded_study_is_no_longer_a_mismatch_of_the_case(case: Case) -> None:
    jane = dicom_renamed("MR_small.dcm", PatientName="DOE^JANE", PatientBirthDate="19580312")
    _ingest(case, jane, "IM1")
    Study.objects.filter(case=case).update(excluded_reason=Study.Exclusion.PATIENT_NOT_THEIRS)
    assert len(case_identity_mismatches(case=case)) == 1  # excluded_at not set yet
    Study.objects.filter(case=case).update(excluded_at=datetime.datetime.now(tz=datetime.UTC))
    assert case_identity_mismatches(case=case) == []
    assert Study.objects.filter(case=case).excluded().count() == 1
