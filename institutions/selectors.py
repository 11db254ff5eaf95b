"""What the operators' console shows about institutions (public schema): status and aggregate
figures, never patient data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from tenants.models import Institution, InstitutionRemoval, InstitutionUsage, OperatorAction


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


OPERATOR_PAGE_SIZE = 50


@dataclass(frozen=True)
class InstitutionPage:
    rows: list[InstitutionRow]
    number: int
    pages: int
    total: int
    query: str


def institution_rows_for_operators(*, page: int = 1, query: str = "") -> InstitutionPage:
    """One page of what operators see per institution: status and the figures the usage sweep
    measured (institutions.usage), never patient data. A fixed number of queries on public tables
    whatever the number of institutions: no institution schema is read here."""
    institutions = institution_list_for_operators().select_related("usage")
    query = query.strip()
    if query:
        institutions = institutions.filter(
            Q(name__icontains=query) | Q(slug__icontains=query) | Q(domains__domain__icontains=query)
        ).distinct()
    total = institutions.count()
    pages = max(1, -(-total // OPERATOR_PAGE_SIZE))
    number = min(max(1, page), pages)
    start = (number - 1) * OPERATOR_PAGE_SIZE
    shown = list(institutions[start : start + OPERATOR_PAGE_SIZE])
    last_actions = {
        action.institution_id: action
        for action in OperatorAction.objects.filter(institution__in=shown)
        .order_by("institution_id", "-created")
        .distinct("institution_id")
    }
    rows = []
    for institution in shown:
        try:
            usage: InstitutionUsage | None = institution.usage
        except InstitutionUsage.DoesNotExist:
            usage = None
        rows.append(
            InstitutionRow(
                institution=institution,
                domains=[d.domain for d in institution.domains.all()],
                case_count=usage.case_count if usage else None,
                last_activity=(usage.last_activity if usage else None) or institution.went_live,
                storage_bytes=usage.storage_bytes if usage else None,
                storage_measured=usage.measured if usage else None,
                last_action=last_actions.get(institution.pk),
            )
        )
    return InstitutionPage(rows=rows, number=number, pages=pages, total=total, query=query)


def operator_actions_recent(*, limit: int = 50) -> QuerySet[OperatorAction]:
    return OperatorAction.objects.select_related("institution").order_by("-created")[:limit]


def institution_removals_recent(*, limit: int = 20) -> QuerySet[InstitutionRemoval]:
    return InstitutionRemoval.objects.order_by("-created")[:limit]
