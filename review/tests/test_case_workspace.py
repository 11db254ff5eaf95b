"""The case workspace: everything about one case on one page, for the staff allowed to see it."""

from __future__ import annotations

from collections.abc import Callable

from django.core import mail
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from imaging.models import Report
from intake.models import Case
from review.models import CaseAssignment
from review.services import DECLINE_REASON_MESSAGE
from tenants.models import Institution
from tests.cases import user_in
from tests.outbox import outbox_deliver_all, outbox_summaries
from tests.staff import staff_force_login


def _events(neuro: Institution, **filters: object) -> list[AuditEvent]:
    with schema_context(neuro.schema_name):
        return list(AuditEvent.objects.filter(**filters))


def test_it_shows_the_case_to_the_coordinator_and_audits_the_view(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    response = staff_client("coordinator").get(f"/workspace/cases/{case.public_id}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Is the lesion on my MRI a tumour" in page
    assert "T1 axial" in page
    assert "Fix match" in page
    assert _events(
        neuro, action="case.view", case_id=case.pk, allowed=True, actor_email="coordinator@neuro.example.com"
    )


def test_it_refuses_a_reviewer_the_case_is_not_assigned_to_and_audits_it(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    response = staff_client("reviewer2").get(f"/workspace/cases/{case.public_id}/")
    assert response.status_code == 404
    assert _events(
        neuro, action="case.view", case_id=case.pk, allowed=False, actor_email="reviewer2@neuro.example.com"
    )


def test_opening_a_case_changes_nothing_and_start_review_moves_it_once(
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    outbox_email: None,
) -> None:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    reviewer = staff_client("reviewer1")
    page = reviewer.get(f"/workspace/cases/{case.public_id}/")
    assert page.status_code == 200 and 'data-testid="start-review"' in page.content.decode()
    with schema_context(neuro.schema_name):
        case.refresh_from_db()
    assert case.status == Case.Status.ASSIGNED  # a GET moves nothing and emails nobody
    assert outbox_summaries(neuro.schema_name) == []
    for _ in range(2):  # a double click
        response = reviewer.post(f"/workspace/cases/{case.public_id}/start-review")
        assert response.status_code == 302
    with schema_context(neuro.schema_name):
        case.refresh_from_db()
    assert case.status == Case.Status.IN_REVIEW
    assert outbox_summaries(neuro.schema_name) == [f"A physician is reviewing your case ({case.number})"]
    assert (
        'data-testid="start-review"'
        not in reviewer.get(f"/workspace/cases/{case.public_id}/").content.decode()
    )


def test_only_the_assigned_reviewer_starts_the_review(
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    cancer: Institution,
) -> None:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    url = f"/workspace/cases/{case.public_id}/start-review"
    assert staff_client("reviewer2").post(url).status_code in (403, 404)  # not theirs
    assert staff_client("coordinator").post(url).status_code == 403
    signed_out = Client(HTTP_HOST="neuro.localhost").post(url)
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"]
    other = Client(HTTP_HOST="cancer.localhost")
    staff_force_login(other, "reviewer1@cancer.example.com")
    assert other.post(url).status_code == 404
    with schema_context(neuro.schema_name):
        case.refresh_from_db()
    assert case.status == Case.Status.ASSIGNED


def test_it_refuses_patients_other_institutions_and_signed_out_visitors(
    neuro: Institution, make_case: Callable[..., Case], cancer_client: Client, neuro_client: Client
) -> None:
    case = make_case()
    url = f"/workspace/cases/{case.public_id}/"
    # Signed out: sent to sign in, and the attempt is on record.
    response = neuro_client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    # The patient who owns it: this is the staff page, not theirs.
    staff_force_login(neuro_client, "patient@neuro.example.com")
    assert neuro_client.get(url).status_code == 403
    # Another patient of the same institution cannot even tell it exists.
    other = Client(HTTP_HOST="neuro.localhost")
    with schema_context(neuro.schema_name):
        from accounts.models import User

        User.objects.create_user("other-patient@example.com", "a-long-password-1")
    staff_force_login(other, "other-patient@example.com")
    assert other.get(url).status_code == 404
    # Another institution's coordinator, on their own site.
    staff_force_login(cancer_client, "coordinator@cancer.example.com")
    assert cancer_client.get(url).status_code == 404
    refusals = _events(neuro, action="case.view", case_id=case.pk, allowed=False)
    assert {e.actor_email for e in refusals} >= {"", "patient@neuro.example.com", "other-patient@example.com"}


def test_it_serves_the_report_sandboxed_for_pdf_js(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    with schema_context(neuro.schema_name):
        report = Report.objects.get(case=case)
    response = staff_client("coordinator").get(
        f"/workspace/cases/{case.public_id}/reports/{report.public_id}/file"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert response.getvalue().startswith(b"%PDF")
    assert _events(neuro, action="report.view", case_id=case.pk, allowed=True)


def test_it_serves_series_previews_only_through_the_case(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    other = make_case(owner_email="patient@neuro.example.com")
    with schema_context(neuro.schema_name):
        series = case.studies.get().series.get()
    client = staff_client("coordinator")
    assert client.get(f"/workspace/cases/{case.public_id}/series/{series.pk}/preview").status_code == 200
    # The same series id under another case is not found.
    assert client.get(f"/workspace/cases/{other.public_id}/series/{series.pk}/preview").status_code == 404


def test_it_fixes_a_report_match_and_audits_it(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    with schema_context(neuro.schema_name):
        report = Report.objects.get(case=case)
        study = case.studies.get()
    response = staff_client("coordinator").post(
        f"/workspace/cases/{case.public_id}/reports/{report.public_id}/match", {"study": str(study.pk)}
    )
    assert response.status_code == 302
    with schema_context(neuro.schema_name):
        report.refresh_from_db()
    assert report.study_id == study.pk
    assert report.match_status == Report.Match.CORRECTED
    event = _events(neuro, action="report.match", case_id=case.pk)[0]
    assert event.detail == {"from_study": None, "to_study": study.pk}


def test_it_asks_the_patient_for_more_and_reopens_their_upload(
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    outbox_email: None,
) -> None:
    case = make_case()
    response = staff_client("coordinator").post(
        f"/workspace/cases/{case.public_id}/request-info", {"note": "Please upload the 2023 MRI."}
    )
    assert response.status_code == 302
    # Written to the outbox with the change; the worker sends it.
    assert outbox_summaries(neuro.schema_name) == [f"We need more information for your case ({case.number})"]
    with schema_context(neuro.schema_name):
        case.refresh_from_db()
    assert case.status == Case.Status.INFO_REQUESTED
    assert case.wizard_step == "images"
    assert case.status_note == "Please upload the 2023 MRI."
    # What the worker then sends: a branded email carrying the coordinator's words.
    assert outbox_deliver_all(neuro.schema_name) == 1
    assert "Please upload the 2023 MRI." in mail.outbox[-1].body
    assert "patient@neuro.example.com" in mail.outbox[-1].to


def test_it_declines_only_with_a_reason(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    client = staff_client("coordinator")
    response = client.post(f"/workspace/cases/{case.public_id}/decline", {"reason": ""}, follow=True)
    assert DECLINE_REASON_MESSAGE in response.content.decode()
    with schema_context(neuro.schema_name):
        case.refresh_from_db()
        assert case.status == Case.Status.SUBMITTED
    client.post(f"/workspace/cases/{case.public_id}/decline", {"reason": "Outside our specialty."})
    with schema_context(neuro.schema_name):
        case.refresh_from_db()
    assert case.status == Case.Status.DECLINED


def test_it_refuses_decline_by_a_reviewer(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    response = staff_client("reviewer1").post(f"/workspace/cases/{case.public_id}/decline", {"reason": "No."})
    assert response.status_code == 403
    assert _events(neuro, action="case.decline", allowed=False, case_id=case.pk)
