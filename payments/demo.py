"""The demo's payments: the cancer centre charges $100 per submission, and since the demo runs
without Stripe, patients get past the fee with a printed waiver code."""

from __future__ import annotations

from decimal import Decimal

from payments.models import WaiverCode
from payments.money import money_format
from payments.stripe_api import stripe_configured
from tenants.models import Institution, InstitutionSettings

DEMO_WAIVER_CODE = "DEMO-WAIVER"
DEMO_FEES: dict[str, tuple[Decimal, str]] = {"cancer": (Decimal("100.00"), "usd")}


def demo_payments_ensure(*, institution: Institution) -> list[str]:
    """Set the demo fee (unless the institution already has one) and the waiver code, in the
    institution's schema. Returns the lines seed_demo prints."""
    fee = DEMO_FEES.get(institution.slug)
    if fee is None:
        return []
    amount, currency = fee
    settings, _ = InstitutionSettings.objects.get_or_create(institution=institution)
    if not settings.fee_enabled and settings.fee_amount == 0:
        settings.fee_enabled, settings.fee_amount, settings.fee_currency = True, amount, currency
        # Without Stripe no card payment is possible: the demo says so (waiver codes only).
        settings.fee_waivers_only = not stripe_configured()
        settings.save(
            update_fields=["fee_enabled", "fee_amount", "fee_currency", "fee_waivers_only", "updated"]
        )
    WaiverCode.objects.get_or_create(
        code=DEMO_WAIVER_CODE, defaults={"purpose": "Demo: submit without paying (Stripe is not configured)"}
    )
    shown = money_format(amount=int(amount * 100), currency=currency)
    return [
        f"    Charges {shown} per submission; without Stripe, patients use the waiver code {DEMO_WAIVER_CODE}"
    ]
