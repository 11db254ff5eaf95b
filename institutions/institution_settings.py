"""Writes of an institution's service settings (fee, turnaround, specialties), shared by the
onboarding wizard and the admin's settings pages."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django_tenants.utils import schema_context, schema_exists

from tenants.models import Institution, InstitutionSettings


def institution_settings_get(*, institution: Institution) -> InstitutionSettings:
    settings_row, _ = InstitutionSettings.objects.get_or_create(institution=institution)
    return settings_row


FEE_NOT_PAYABLE = (
    "Patients could not pay your fee: connect your Stripe account at the Fee step, or choose "
    "waiver codes only (or turn the fee off)."
)


def institution_fee_update(
    *,
    institution: Institution,
    fee_enabled: bool,
    fee_amount: Decimal,
    fee_currency: str,
    fee_waivers_only: bool = False,
) -> InstitutionSettings:
    row = institution_settings_get(institution=institution)
    row.fee_enabled = fee_enabled
    row.fee_amount = fee_amount if fee_enabled else row.fee_amount
    row.fee_currency = fee_currency
    row.fee_waivers_only = fee_waivers_only
    row.save(update_fields=["fee_enabled", "fee_amount", "fee_currency", "fee_waivers_only", "updated"])
    return row


def institution_fee_problem(*, institution: Institution) -> str | None:
    """Why patients could not pay the institution's fee, or None (no fee, waiver codes only,
    or card payment that works: the platform's Stripe and a connected account that can charge)."""
    from payments.selectors import payment_methods_get

    return None if payment_methods_get(institution=institution).payable else FEE_NOT_PAYABLE


def institution_service_update(
    *, institution: Institution, turnaround_business_days: int, specialties: str, time_zone: str
) -> InstitutionSettings:
    """Precondition: ``time_zone`` passed ``time_zone_validate`` (the form's choices)."""
    with transaction.atomic():
        if institution.time_zone != time_zone:
            institution.time_zone = time_zone
            institution.save(update_fields=["time_zone"])
        row = institution_settings_get(institution=institution)
        row.turnaround_business_days = turnaround_business_days
        row.specialties = "\n".join(line.strip() for line in specialties.splitlines() if line.strip())
        row.save(update_fields=["turnaround_business_days", "specialties", "updated"])
        review_settings_sync(institution=institution)
    return row


def review_settings_sync(*, institution: Institution) -> None:
    """Make sure the institution's schema has its review settings row. The turnaround promise
    is not copied there: its one home is ``InstitutionSettings`` (the review workspace reads
    it from there). A draft has no schema yet: go-live calls this."""
    if institution.status == Institution.Status.DRAFT and not schema_exists(institution.schema_name):
        return
    from review.models import ReviewSettings

    with schema_context(institution.schema_name):
        if not ReviewSettings.objects.exists():
            ReviewSettings.objects.create()
