"""Reading prices, payments, revenue and the Stripe connection (current schema)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from intake.models import Case
from payments.connect.models import StripeAccount
from payments.models import Payment, WaiverCode
from payments.money import money_format
from payments.stripe_api import stripe_configured
from tenants.models import Institution, InstitutionSettings
from tenants.schema import current_institution


def institution_current() -> Institution:
    """The institution whose schema the connection is on (a request's, a task's, a webhook's)."""
    return current_institution()


@dataclass(frozen=True)
class Quote:
    """What a patient will be asked to pay, as shown to them."""

    required: bool
    amount: int  # minor units
    currency: str

    @property
    def display(self) -> str:
        return money_format(amount=self.amount, currency=self.currency)


def price_quote_current(*, institution: Institution) -> Quote:
    """Today's fee of the institution (its service settings), for the portal to show before a
    patient starts, and for a case's first snapshot."""
    fee = InstitutionSettings.objects.filter(institution=institution).first()
    if fee is None or not fee.fee_enabled or fee.fee_amount_minor <= 0:
        return Quote(required=False, amount=0, currency=fee.fee_currency if fee else "usd")
    return Quote(required=True, amount=fee.fee_amount_minor, currency=fee.fee_currency)


def payment_for_case(*, case: Case) -> Payment | None:
    return Payment.objects.filter(case=case).first()


def stripe_account_current(*, institution: Institution) -> StripeAccount | None:
    """The institution's connected (not disconnected) Stripe account, if any."""
    return StripeAccount.objects.filter(institution=institution, disconnected_at__isnull=True).first()


@dataclass(frozen=True)
class PaymentSetup:
    """What an admin (and the checkout page) needs to know about taking card payments."""

    platform_configured: bool
    account: StripeAccount | None

    @property
    def can_charge(self) -> bool:
        return self.platform_configured and self.account is not None and self.account.can_charge

    @property
    def state(self) -> str:
        if not self.platform_configured:
            return "not_configured"
        if self.account is None:
            return "not_connected"
        if not self.account.can_charge:
            return "onboarding"
        return "active"


def payment_setup_get(*, institution: Institution) -> PaymentSetup:
    return PaymentSetup(
        platform_configured=stripe_configured(),
        account=stripe_account_current(institution=institution),
    )


@dataclass(frozen=True)
class PaymentMethods:
    """How a patient of the institution can pay its fee today, for the portal to say so."""

    fee_required: bool
    card: bool  # card payment works now (the platform's Stripe and a connected account)
    waivers_only: bool  # the institution chose waiver codes only

    @property
    def payable(self) -> bool:
        return not self.fee_required or self.card or self.waivers_only


def payment_methods_get(*, institution: Institution) -> PaymentMethods:
    quote = price_quote_current(institution=institution)
    fee = InstitutionSettings.objects.filter(institution=institution).first()
    waivers_only = bool(fee and fee.fee_waivers_only)
    return PaymentMethods(
        fee_required=quote.required,
        card=quote.required and not waivers_only and payment_setup_get(institution=institution).can_charge,
        waivers_only=quote.required and waivers_only,
    )


def waiver_codes_list() -> QuerySet[WaiverCode]:
    return WaiverCode.objects.all()


def payments_list() -> QuerySet[Payment]:
    """Payments staff care about (cases that had a fee), newest first."""
    return (
        Payment.objects.exclude(status=Payment.Status.NOT_REQUIRED)
        .select_related("case", "waiver")
        .order_by("-created")
    )


@dataclass(frozen=True)
class WeekRevenue:
    week_start: datetime.date
    currency: str
    gross: int  # minor units paid that week
    refunded: int  # minor units of those payments refunded since
    payments: int

    @property
    def net(self) -> int:
        return self.gross - self.refunded

    @property
    def net_display(self) -> str:
        return money_format(amount=self.net, currency=self.currency)

    @property
    def gross_display(self) -> str:
        return money_format(amount=self.gross, currency=self.currency)

    @property
    def refunded_display(self) -> str:
        return money_format(amount=self.refunded, currency=self.currency)


def revenue_by_week(*, since: datetime.datetime) -> list[WeekRevenue]:
    """Card payments confirmed by Stripe since ``since``, per ISO week and currency, newest
    week first. Runs in the current schema: only this institution's payments are counted."""
    rows = (
        Payment.objects.filter(paid_at__gte=since, amount_paid__gt=0)
        .annotate(week=TruncWeek("paid_at"))
        .values("week", "currency")
        .annotate(gross=Sum("amount_paid"), refunded=Sum("amount_refunded"), payments=Count("id"))
        .order_by("-week", "currency")
    )
    return [
        WeekRevenue(
            week_start=row["week"].date(),
            currency=row["currency"],
            gross=row["gross"] or 0,
            refunded=row["refunded"] or 0,
            payments=row["payments"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class RevenueTotal:
    currency: str
    net: int
    payments: int

    @property
    def display(self) -> str:
        return money_format(amount=self.net, currency=self.currency)


def revenue_total(*, since: datetime.datetime) -> list[RevenueTotal]:
    """Net revenue since ``since`` per currency (usually one)."""
    totals: dict[str, tuple[int, int]] = {}
    for week in revenue_by_week(since=since):
        net, count = totals.get(week.currency, (0, 0))
        totals[week.currency] = (net + week.net, count + week.payments)
    return [RevenueTotal(currency=c, net=n, payments=p) for c, (n, p) in sorted(totals.items())]


CSV_HEADER = [
    "case",
    "status",
    "amount",
    "currency",
    "amount_paid",
    "amount_refunded",
    "paid_at",
    "refunded_at",
    "waiver_code",
    "stripe_payment_intent",
    "created",
]


def _iso(value: datetime.datetime | None, zone: datetime.tzinfo) -> str:
    return timezone.localtime(value, zone).isoformat() if value else ""


def payments_export_rows(*, zone: datetime.tzinfo) -> Iterator[list[str]]:
    """Rows of the payments CSV (under :data:`CSV_HEADER`). No patient names: the case number
    identifies the case for those allowed to look it up. Times are in ``zone`` (the
    institution's; each with its UTC offset), fixed by the caller: the rows are produced while
    the response streams, after the request's time zone was put back."""
    for payment in payments_list().iterator(chunk_size=500):
        yield [
            payment.case.number or "",
            payment.status,
            f"{Decimal(payment.amount) / 100:.2f}",
            payment.currency.upper(),
            f"{Decimal(payment.amount_paid) / 100:.2f}",
            f"{Decimal(payment.amount_refunded) / 100:.2f}",
            _iso(payment.paid_at, zone),
            _iso(payment.refunded_at, zone),
            payment.waiver.code if payment.waiver else "",
            payment.payment_intent_id,
            _iso(payment.created, zone),
        ]
