"""Each institution's time zone (issue 12 item 7): stored times stay UTC, but what people read
is the institution's wall clock: the signed PDF and the patient's page, due dates counted in
its business days (across a DST change too), emails written from a Stripe webhook, the
dashboard's SQL arithmetic, CSV exports and Celery tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from config.celery_app import _institution_time_zone_for_task, _time_zone_after_task
from intake.models import Case
from review.dashboard import promised_sql
from review.models import Opinion
from review.pdf import opinion_pdf_render
from review.selectors import business_days_add, case_due_at
from review.tests.test_opinion_pdf import _sign, _text, assigned_case  # noqa: F401 (a fixture)
from tenants.models import Institution, InstitutionSettings

# 23:30 UTC on Monday 30 November: still the 30th in New York, already 1 December in Tokyo.
LATE_EVENING_UTC = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)


def _zone_set(institution: Institution, zone: str) -> Institution:
    Institution.objects.filter(pk=institution.pk).update(time_zone=zone)
    institution.refresh_from_db()
    return institution


@pytest.mark.parametrize(
    ("zone", "pdf_date", "page_date", "not_shown"),
    [
        ("America/New_York", "30 November 2026", "on 30 November 2026.", "1 December 2026"),
        ("Asia/Tokyo", "1 December 2026", "on 1 December 2026.", "30 November 2026"),
    ],
)
def test_the_signed_pdf_and_the_patients_page_show_the_institutions_date(
    zone: str,
    pdf_date: str,
    page_date: str,
    not_shown: str,
    neuro: Institution,
    assigned_case: Case,  # noqa: F811
    staff_client: Callable[[str], Client],
    neuro_client: Client,
) -> None:
    neuro = _zone_set(neuro, zone)
    reviewer = staff_client("reviewer1")
    _sign(reviewer, assigned_case)
    reviewer.post(f"/workspace/cases/{assigned_case.public_id}/opinion/release")
    with schema_context(neuro.schema_name):
        Opinion.objects.filter(case=assigned_case).update(signed_at=LATE_EVENING_UTC)
        opinion = Opinion.objects.get(case=assigned_case)
        text = _text(opinion_pdf_render(opinion=opinion, case=opinion.case, institution=neuro))
        neuro_client.force_login(assigned_case.owner)
    assert f"{pdf_date} ({zone} time)" in text
    assert not_shown not in text
    page = neuro_client.get(f"/opinions/{assigned_case.public_id}/").content.decode()
    assert page_date in page and not_shown not in page


def test_a_due_date_keeps_its_local_time_across_a_dst_change(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    """Friday 6 March 2026, 14:00 in New York (EST) plus 7 business days is Tuesday 17 March,
    14:00 (EDT since the 8th): 18:00 UTC, not the 19:00 UTC counting in UTC would give."""
    neuro = _zone_set(neuro, "America/New_York")
    InstitutionSettings.objects.update_or_create(institution=neuro, defaults={"turnaround_business_days": 7})
    submitted = dt.datetime(2026, 3, 6, 19, 0, tzinfo=dt.UTC)
    case = make_case(status=Case.Status.SUBMITTED)
    with schema_context(neuro.schema_name):
        Case.objects.filter(pk=case.pk).update(submitted_at=submitted, due_at=None)
        case.refresh_from_db()
        with timezone.override("America/New_York"):
            due = case_due_at(case=case, turnaround_business_days=7)
    assert due == dt.datetime(2026, 3, 17, 18, 0, tzinfo=dt.UTC)
    page = staff_client("coordinator").get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert 'datetime="2026-03-17T14:00:00-04:00"' in page and "Tue 17 Mar 2026" in page


def test_business_days_are_the_institutions_weekdays() -> None:
    """Friday 23:30 UTC is Saturday morning in Tokyo: the case is first seen on Monday there."""
    friday_late = dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC)
    with timezone.override("Asia/Tokyo"):
        due = business_days_add(friday_late, 1)
    assert timezone.localtime(due, timezone.get_fixed_timezone(9 * 60)).replace(tzinfo=None) == dt.datetime(
        2026, 12, 1, 0, 0
    )
    assert business_days_add(friday_late, 1) == dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # in UTC


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_the_dashboards_sql_counts_business_days_as_python_does_in_the_zone(db: None, zone: str) -> None:
    start = dt.datetime(2026, 3, 2, 0, 30, tzinfo=dt.UTC)  # DST starts in New York on the 8th
    with timezone.override(zone), connection.cursor() as cursor:
        expression = promised_sql("t.start", "t.days")
        for moment in (start + dt.timedelta(hours=7 * i) for i in range(48)):
            for days in (0, 1, 5, 7):
                cursor.execute(
                    f"SELECT {expression} FROM (SELECT %s::timestamptz AS start, %s::int AS days) t",  # noqa: S608
                    [moment, days],
                )
                assert cursor.fetchone()[0] == business_days_add(moment, days), (moment, days)


def test_a_receipt_written_from_stripes_webhook_shows_the_institutions_date(cancer: Institution) -> None:
    """Stripe's webhook arrives on the platform's domain (UTC); the receipt still says the
    patient's date at the institution."""
    from django.core import mail

    from payments.models import Payment
    from payments.notifications import payment_receipt_send
    from payments.tests.conftest import case_awaiting_payment

    cancer = _zone_set(cancer, "Asia/Tokyo")
    case = case_awaiting_payment(cancer)
    mail.outbox.clear()
    with tenant_context(cancer):
        payment = Payment.objects.create(
            case=case,
            amount=10000,
            currency="usd",
            status=Payment.Status.PAID,
            amount_paid=10000,
            paid_at=LATE_EVENING_UTC,
        )
        assert timezone.get_current_timezone_name() == "UTC"  # as in the webhook
        assert payment_receipt_send(payment_id=payment.pk)
    (receipt,) = mail.outbox
    assert "Date: 1 December 2026" in receipt.body


def test_a_task_runs_in_its_institutions_time_zone(neuro: Institution) -> None:
    neuro = _zone_set(neuro, "Asia/Tokyo")
    with tenant_context(neuro):
        _institution_time_zone_for_task()
        assert timezone.get_current_timezone_name() == "Asia/Tokyo"
        assert timezone.localdate(LATE_EVENING_UTC) == dt.date(2026, 12, 1)
        _time_zone_after_task()
    assert timezone.get_current_timezone_name() == "UTC"


def test_the_payments_export_writes_the_institutions_time_with_its_offset(cancer: Institution) -> None:
    """The CSV streams after the view returned (and the request's zone was put back): its times
    are still Tokyo's, each with its offset, so a spreadsheet can read them either way."""
    from payments.models import Payment
    from payments.tests.conftest import case_awaiting_payment, signed_in

    cancer = _zone_set(cancer, "Asia/Tokyo")
    case = case_awaiting_payment(cancer)
    with tenant_context(cancer):
        Payment.objects.create(
            case=case,
            amount=10000,
            currency="usd",
            status=Payment.Status.PAID,
            amount_paid=10000,
            paid_at=LATE_EVENING_UTC,
        )
    admin = signed_in(cancer, "admin@cancer.example.com", staff_second_factor=True)
    response = admin.get("/payments/export.csv")
    csv_text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    (row,) = [line for line in csv_text.splitlines() if line.startswith(str(case.number))]
    assert "2026-12-01T08:30:00+09:00" in row
    assert timezone.get_current_timezone_name() == "UTC"  # the request's zone was put back


def test_a_waiver_code_expires_at_the_end_of_the_institutions_day(cancer: Institution) -> None:
    """Valid until 1 December at a Tokyo institution: until midnight in Tokyo (15:00 UTC)."""
    from payments.models import WaiverCode
    from payments.tests.conftest import signed_in

    cancer = _zone_set(cancer, "Asia/Tokyo")
    admin = signed_in(cancer, "admin@cancer.example.com", staff_second_factor=True)
    expires_on = timezone.localdate(timezone.now(), timezone.get_fixed_timezone(9 * 60)) + dt.timedelta(
        days=1
    )
    page = admin.post(
        "/payments/settings/waiver-codes/",
        {"code": "TOKYO-DAY-CODE", "expires_on": expires_on.isoformat()},
        follow=True,
    ).content.decode()
    with tenant_context(cancer):
        waiver = WaiverCode.objects.get(code="TOKYO-DAY-CODE")
    midnight_tokyo = dt.datetime.combine(
        expires_on + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC
    ) - dt.timedelta(hours=9)
    assert waiver.expires_at == midnight_tokyo
    assert f"{(expires_on + dt.timedelta(days=1)).day} " in page and "00:00 JST" in page


def test_the_dashboard_counts_a_referral_in_the_institutions_week(
    neuro: Institution, make_case: Callable[..., Case]
) -> None:
    """Sunday 20:00 UTC is Monday 05:00 in Tokyo: that referral is in Tokyo's new week, not the
    week UTC would put it in."""
    from review.dashboard import dashboard_build

    now = timezone.now()
    sunday = (now - dt.timedelta(days=(now.weekday() + 1) % 7 or 7)).date()
    submitted = dt.datetime.combine(sunday, dt.time(20, 0), tzinfo=dt.UTC)
    case = make_case(status=Case.Status.SUBMITTED)
    with schema_context(neuro.schema_name):
        Case.objects.filter(submitted_at__isnull=False).exclude(pk=case.pk).update(submitted_at=None)
        Case.objects.filter(pk=case.pk).update(submitted_at=submitted)
        with timezone.override("Asia/Tokyo"):
            tokyo = {week: n for week, n in dashboard_build().weeks if n}
        utc = {week: n for week, n in dashboard_build().weeks if n}
    monday_after = sunday + dt.timedelta(days=1)
    assert tokyo == {monday_after: 1}
    assert utc == {monday_after - dt.timedelta(days=7): 1}
