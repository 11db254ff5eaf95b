"""Case numbers. (Status changes: ``intake.workflow``.)"""

from __future__ import annotations

from django.db import connection

from intake.models import Case


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
