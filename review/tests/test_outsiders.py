"""Every case endpoint of the workspace refuses outsiders, changes nothing for them, and
records the refused attempt in the audit log."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from imaging.models import Report
from intake.models import Case
from payments.services import REFUND_NOTHING_PAID
from review.models import CaseAssignment, CaseNote
from tenants.models import Institution
from tests.cases import user_in
from tests.staff import staff_force_login

# (method, path after /workspace/cases/<id>/, who may: "staff" | "coordinator" | "reviewer" | "peer")
ENDPOINTS = [
    ("get", "", "staff"),
    ("post", "assign", "coordinator"),
    ("post", "notes", "staff"),
    ("post", "request-info", "staff"),
    ("post", "decline", "coordinator"),
    ("post", "close", "coordinator"),
    ("post", "outcomes", "coordinator"),
    ("post", "reports/{report}/match", "staff"),
    ("get", "reports/{report}/file", "staff"),
    ("get", "series/{series}/preview", "staff"),
    ("post", "opinion/draft", "reviewer"),
    ("post", "opinion/sign", "reviewer"),
    ("post", "opinion/release", "staff"),
    ("get", "opinion/pdf", "staff"),
    ("get", "opinion/pdf/v1", "staff"),
    ("post", "opinion/template", "reviewer"),
    ("post", "opinion/addenda", "reviewer"),
    ("post", "peer-review/request", "staff"),
    ("post", "peer-review/answer", "peer"),
    ("post", "peer-review/00000000-0000-4000-8000-000000000000/override", "coordinator"),
    ("post", "follow-ups/1/answer", "staff"),
]
PAYLOAD = {
    "reviewer": "rules",
    "text": "x",
    "note": "x",
    "reason": "x",
    "kind": "no_change",
    "findings": "x",
    "template": "1",
    "secret": "x",
}


@pytest.fixture
def case_and_paths(neuro: Institution, make_case: Callable[..., Case]) -> tuple[Case, dict[str, str]]:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
        ids = {
            "report": str(Report.objects.get(case=case).public_id),
            "series": str(case.studies.get().series.get().pk),
        }
    return case, ids


def _outsiders(neuro: Institution, cancer_client: Client) -> dict[str, Client]:
    signed_out = Client(HTTP_HOST="neuro.localhost")
    owner = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(owner, "patient@neuro.example.com")
    other_reviewer = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(other_reviewer, "reviewer2@neuro.example.com")
    staff_force_login(cancer_client, "coordinator@cancer.example.com")
    return {
        "signed_out": signed_out,
        "owner": owner,
        "other_reviewer": other_reviewer,
        "cancer": cancer_client,
    }


@pytest.mark.parametrize(("method", "tail", "need"), ENDPOINTS)
def test_it_refuses_outsiders_on_every_case_endpoint(
    neuro: Institution,
    cancer_client: Client,
    case_and_paths: tuple[Case, dict[str, str]],
    method: str,
    tail: str,
    need: str,
) -> None:
    case, ids = case_and_paths
    url = f"/workspace/cases/{case.public_id}/{tail.format(**ids)}"
    for who, client in _outsiders(neuro, cancer_client).items():
        response = getattr(client, method)(url, PAYLOAD)
        if who == "signed_out":
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], (who, url)
        else:
            assert response.status_code in (403, 404), (who, url, response.status_code)
    with schema_context(neuro.schema_name):
        case.refresh_from_db()
        assert case.status == Case.Status.ASSIGNED
        assert not CaseNote.objects.filter(case=case).exists()
        refused = set(
            AuditEvent.objects.filter(case_id=case.pk, allowed=False).values_list("actor_email", flat=True)
        )
    assert {"", "patient@neuro.example.com", "reviewer2@neuro.example.com"} <= refused


@pytest.mark.parametrize(("method", "tail", "need"), [e for e in ENDPOINTS if e[2] == "coordinator"])
def test_it_keeps_coordinator_steps_from_the_assigned_reviewer(
    staff_client: Callable[[str], Client],
    case_and_paths: tuple[Case, dict[str, str]],
    method: str,
    tail: str,
    need: str,
) -> None:
    case, ids = case_and_paths
    url = f"/workspace/cases/{case.public_id}/{tail.format(**ids)}"
    assert getattr(staff_client("reviewer1"), method)(url, PAYLOAD).status_code == 403


def test_it_declines_and_tells_staff_what_happened_to_the_money(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case()
    page = staff_client("coordinator").post(
        f"/workspace/cases/{case.public_id}/decline", {"reason": "Outside our specialty."}, follow=True
    )
    assert REFUND_NOTHING_PAID in page.content.decode()


def test_it_warns_staff_when_a_paid_case_could_not_be_refunded(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    from django.utils import timezone

    from payments.models import Payment
    from payments.services import REFUND_NO_ACCOUNT

    case = make_case()
    with schema_context(neuro.schema_name):
        Payment.objects.create(
            case=case,
            amount=10000,
            currency="usd",
            status=Payment.Status.PAID,
            amount_paid=10000,
            payment_intent_id="pi_test_gone",
            stripe_account_id="acct_test_disconnected",
            paid_at=timezone.now(),
        )
    page = staff_client("coordinator").post(
        f"/workspace/cases/{case.public_id}/decline", {"reason": "Outside our specialty."}, follow=True
    )
    assert f'<li class="message warning">{REFUND_NO_ACCOUNT}</li>' in page.content.decode()
