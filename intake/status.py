"""Moving a case between states, and telling the patient when it matters to them.

Every state change of a case goes through ``case_status_change`` (intake, review and payments
all call it), so the patient gets exactly one branded email per change they care about.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from intake.models import Case
from intake.notifications import PATIENT_NOTICES
from intake.tasks import case_status_email


def case_number_assign(*, case: Case, prefix: str) -> str:
    """Give a case its human number (e.g. NNI-000042) once; safe to call again."""
    if case.number:
        return case.number
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS intake_case_number_seq")
        cursor.execute("SELECT nextval('intake_case_number_seq')")
        (value,) = cursor.fetchone()
    case.number = f"{prefix}-{value:06d}"
    case.save(update_fields=["number"])
    return case.number


def case_status_change(*, case: Case, status: str, note: str = "") -> Case:
    """Set ``case.status`` and, after the transaction commits, email the patient if the new
    state is one they are told about. Does nothing when the case already has that status, so
    a repeated call (a retried task, a webhook delivered twice) sends no second email."""
    if case.status == status:
        return case
    now = timezone.now()
    case.status = status
    case.status_changed = now
    fields = ["status", "status_changed", "updated"]
    if status == Case.Status.SUBMITTED and case.submitted_at is None:
        case.submitted_at = now
        fields.append("submitted_at")
    case.save(update_fields=fields)
    if status in PATIENT_NOTICES:
        case_id, note_text = case.pk, note
        transaction.on_commit(lambda: case_status_email.delay(case_id, status, note_text))
    return case
