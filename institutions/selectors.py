"""What the operators' console shows about institutions (public schema): status and aggregate
figures, never patient data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from tenants.models import Institution, InstitutionUsage, OperatorAction
from tenants.selectors import institution_schemas_live


def institution_list_for_operators() -> QuerySet[Institution]:
    """Every institution but the public one, with its domains; no patient data."""
    return Institution.objects.exclude(schema_name="public").prefetch_related("domains").order_by("name")


@dataclass(frozen=True)
class InstitutionRow:
    institution: Institution
    domains: list[str]
    case_count: int | None
    last_activity: datetime | None
    storage_bytes: int | None
    storage_measured: datetime | None
    last_action: OperatorAction | None


def _live_schema_figures(schemas: list[str]) -> dict[str, tuple[int, datetime | None]]:
    """Cases and last activity (a case change or a sign-in) of each schema, in ONE query.

    Schema names come from Institution rows (validated identifiers) and are quoted.
    """
    if not schemas:
        return {}
    parts = []
    for schema in schemas:
        quoted = '"' + schema.replace('"', '""') + '"'
        parts.append(
            f"SELECT %s AS schema, (SELECT count(*) FROM {quoted}.intake_case) AS cases, "  # noqa: S608
            f"GREATEST((SELECT max(updated) FROM {quoted}.intake_case), "
            f"(SELECT max(last_login) FROM {quoted}.accounts_user)) AS active"
        )
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), schemas)
        return {schema: (cases, active) for schema, cases, active in cursor.fetchall()}


def institution_rows_for_operators() -> list[InstitutionRow]:
    """What operators see per institution: status and aggregate figures, never patient data."""
    institutions = list(institution_list_for_operators())
    existing = set(institution_schemas_live())
    live = [i.schema_name for i in institutions if i.schema_name in existing]
    figures = _live_schema_figures(live)
    usage = {u.institution_id: u for u in InstitutionUsage.objects.filter(institution__in=institutions)}
    last_actions: dict[int, OperatorAction] = {}
    for action in OperatorAction.objects.filter(institution__in=institutions).order_by("created"):
        last_actions[action.institution_id] = action
    rows = []
    for institution in institutions:
        cases, active = figures.get(institution.schema_name, (None, None))
        snapshot = usage.get(institution.pk)
        rows.append(
            InstitutionRow(
                institution=institution,
                domains=[d.domain for d in institution.domains.all()],
                case_count=cases,
                last_activity=active or institution.went_live,
                storage_bytes=snapshot.storage_bytes if snapshot else None,
                storage_measured=snapshot.measured if snapshot else None,
                last_action=last_actions.get(institution.pk),
            )
        )
    return rows


def operator_actions_recent(*, limit: int = 50) -> QuerySet[OperatorAction]:
    return OperatorAction.objects.select_related("institution").order_by("-created")[:limit]
