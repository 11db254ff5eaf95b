"""One patient per case: images naming two people are flagged, before and after submission."""

from __future__ import annotations

import re

from django.db import transaction

from imaging.cases import CaseRow, case_model
from imaging.ingest import messages
from imaging.models import FileProblem, Study

_SEPARATORS = re.compile(r"[\^\s,]+")


def patient_name_normalise(name: str) -> str:
    """DICOM writes "DOE^JOHN^^^"; other writers add spaces or change case. Compare the words."""
    return " ".join(part for part in _SEPARATORS.split(name.upper()) if part)


def patient_names_differ(first: str, second: str) -> bool:
    a, b = patient_name_normalise(first), patient_name_normalise(second)
    return bool(a and b and a != b)


def case_patient_consistency_check(*, case: CaseRow, mismatch_seen: bool = False) -> bool:
    """Flag the case (one FileProblem, upload-less) if its images name more than one patient
    or birth date; ``mismatch_seen`` says ingest saw two within one study. Returns whether the
    case is flagged. Anonymised files (no name, no date) never count against the others."""
    names = {
        patient_name_normalise(name)
        for name in Study.objects.filter(case=case).values_list("patient_name_in_files", flat=True)
    } - {""}
    birth_dates = {
        value.strip()
        for value in Study.objects.filter(case=case).values_list("patient_birth_date_in_files", flat=True)
    } - {""}
    if not (mismatch_seen or len(names) > 1 or len(birth_dates) > 1):
        return FileProblem.objects.filter(case=case, code=FileProblem.Code.INCONSISTENT_PATIENT).exists()
    with transaction.atomic():
        # The case row is the lock: two workers finishing at once record the problem once.
        case_model()._default_manager.select_for_update().filter(pk=case.pk).first()
        FileProblem.objects.get_or_create(
            case=case,
            upload=None,
            code=FileProblem.Code.INCONSISTENT_PATIENT,
            defaults={"message": messages.INCONSISTENT_PATIENT},
        )
    return True
