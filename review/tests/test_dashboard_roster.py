"""The institution's dashboard (referrals, funnel, turnaround, outcomes, CSV) and the roster."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from intake.models import Case
from review.models import Outcome, ReviewerProfile, ReviewSettings
from tenants.models import Institution, InstitutionSettings
from tests.cases import user_in


def test_it_counts_referrals_and_surgeries_this_month(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    client = staff_client("coordinator")
    before = client.get("/workspace/dashboard/").context["board"]
    case = make_case(status=Case.Status.RELEASED, submitted_days_ago=0)
    make_case(submitted_days_ago=0)
    client.post(f"/workspace/cases/{case.public_id}/outcomes", {"kind": "surgery_scheduled", "note": ""})
    response = client.get("/workspace/dashboard/")
    board = response.context["board"]
    assert board.month_referrals == before.month_referrals + 2
    assert board.month_outcomes["Surgery scheduled"] == before.month_outcomes["Surgery scheduled"] + 1
    assert "<svg" in response.content.decode()
    export = client.get("/workspace/dashboard.csv").getvalue().decode()
    assert export.startswith("section,label,value")
    assert f"this_month,referrals,{board.month_referrals}" in export
    with schema_context(neuro.schema_name):
        assert Outcome.objects.filter(case=case, kind="surgery_scheduled").exists()


def test_it_keeps_reviewers_and_patients_off_the_dashboard(
    staff_client: Callable[[str], Client], neuro_client: Client
) -> None:
    assert staff_client("reviewer1").get("/workspace/dashboard/").status_code == 403
    assert neuro_client.get("/workspace/dashboard/").status_code == 302


def test_it_lets_the_admin_edit_the_roster_and_settings(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    admin = staff_client("admin")
    reviewer = user_in(neuro, "reviewer2@neuro.example.com")
    assert "Dr. Sam Okafor" in admin.get("/workspace/roster/").content.decode()
    prefix = f"u{reviewer.pk}-"
    admin.post(
        f"/workspace/roster/{reviewer.pk}",
        {
            prefix + "is_reviewer": "on",
            prefix + "credentials": "MD, PhD",
            prefix + "specialties": "Spine, Neurosurgery",
            prefix + "modalities": "mr, ct",
            prefix + "max_open_cases": "4",
        },
    )
    admin.post(
        "/workspace/settings",
        {
            "turnaround_business_days": "5",
            "soon_due_business_days": "1",
            "session_idle_minutes": "30",
            "follow_up_questions_allowed": "2",
        },
    )
    with schema_context(neuro.schema_name):
        profile = ReviewerProfile.objects.get(user=reviewer)
        settings_row = ReviewSettings.objects.get()
    assert (profile.specialties, profile.modalities, profile.max_open_cases) == (
        "spine,neurosurgery",
        "MR,CT",
        4,
    )
    assert profile.available is False  # unticked
    # The promise has one home, the service settings the admin also sees under /settings/.
    assert InstitutionSettings.objects.get(institution=neuro).turnaround_business_days == 5
    assert (
        'name="service-turnaround_business_days" value="5"'
        in admin.get("/settings/service/").content.decode()
    )
    assert settings_row.reviewers_see_only_assigned is False


def test_it_keeps_the_roster_to_admins(staff_client: Callable[[str], Client], neuro: Institution) -> None:
    coordinator = staff_client("coordinator")
    assert coordinator.get("/workspace/roster/").status_code == 403
    reviewer = user_in(neuro, "reviewer1@neuro.example.com")
    assert coordinator.post(f"/workspace/roster/{reviewer.pk}", {}).status_code == 403
    assert coordinator.post("/workspace/settings", {}).status_code == 403


def test_it_shows_revenue_as_payments_formats_it(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    from django.utils import timezone

    from payments.models import Payment

    client = staff_client("coordinator")
    with schema_context(neuro.schema_name):
        for amount, refunded in ((10000, 0), (5050, 5050), (2500, 0)):
            Payment.objects.create(
                case=make_case(),
                amount=amount,
                currency="usd",
                status=Payment.Status.PAID,
                amount_paid=amount,
                amount_refunded=refunded,
                paid_at=timezone.now(),
            )
    page = client.get("/workspace/dashboard/").content.decode()
    assert '<strong data-testid="revenue-total">$125.00</strong> net from 3 payments' in page
    export = client.get("/workspace/dashboard.csv").getvalue().decode()
    assert "revenue_last_12_weeks,USD,$125.00" in export


def test_it_reads_default_settings_without_writing_a_row(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    from review.selectors import review_settings_get

    with schema_context(neuro.schema_name):
        ReviewSettings.objects.all().delete()
        row = review_settings_get()
        assert row.pk is None and row.reviewers_see_only_assigned
        assert not ReviewSettings.objects.exists()  # a read wrote nothing
    assert staff_client("coordinator").get("/workspace/").status_code == 200
    with schema_context(neuro.schema_name):
        assert not ReviewSettings.objects.exists()  # nor did a page that reads them

    staff_client("admin").post(
        "/workspace/settings",
        {
            "turnaround_business_days": "6",
            "soon_due_business_days": "1",
            "session_idle_minutes": "15",
            "follow_up_questions_allowed": "3",
        },
    )
    with schema_context(neuro.schema_name):
        assert ReviewSettings.objects.get().soon_due_business_days == 1  # saving writes the row
    assert InstitutionSettings.objects.get(institution=neuro).turnaround_business_days == 6


def test_it_never_gives_a_patient_account_a_staff_role(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    admin = staff_client("admin")
    patient = user_in(neuro, "patient@neuro.example.com")
    prefix = f"u{patient.pk}-"
    response = admin.post(
        f"/workspace/roster/{patient.pk}",
        {prefix + "is_reviewer": "on", prefix + "is_institution_admin": "on", prefix + "max_open_cases": "4"},
    )
    assert response.status_code == 404
    patient.refresh_from_db()
    assert not patient.is_institution_staff


def test_it_audits_every_role_change(neuro: Institution, staff_client: Callable[[str], Client]) -> None:
    admin = staff_client("admin")
    reviewer = user_in(neuro, "reviewer2@neuro.example.com")
    prefix = f"u{reviewer.pk}-"
    admin.post(
        f"/workspace/roster/{reviewer.pk}",
        {prefix + "is_reviewer": "on", prefix + "is_coordinator": "on", prefix + "max_open_cases": "4"},
    )
    with schema_context(neuro.schema_name):
        event = AuditEvent.objects.get(action="roles.change", object_ref=f"user:{reviewer.pk}")
    assert event.actor_email == "admin@neuro.example.com"
    assert event.detail == {"roles": ["Coordinator", "Reviewer"], "reason": "roster"}
