"""The patient shares the released opinion with their own doctor: a time-limited, revocable link
that opens only with a code given separately; wrong codes are limited; every access audited."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from intake.models import Case
from review.models import CaseAssignment, OpinionShare
from review.sharing import ATTEMPTS_BEFORE_LOCK
from review.tests.test_opinion import OPINION, _signed, _url
from tenants.models import Institution
from tests.cases import user_in
from tests.staff import staff_force_login


@pytest.fixture
def assigned_case(neuro: Institution, make_case: Callable[..., Case]) -> Case:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    return case


@pytest.fixture
def released(neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]) -> Case:
    _signed(staff_client("reviewer1"), assigned_case)
    staff_client("coordinator").post(_url(assigned_case, "opinion/release"))
    return assigned_case


@pytest.fixture
def patient(neuro_client: Client) -> Client:
    staff_force_login(neuro_client, "patient@neuro.example.com")
    return neuro_client


def _share(patient: Client, case: Case, days: int = 30) -> tuple[str, str]:
    page = patient.post(f"/opinions/{case.public_id}/share", {"recipient": "Dr. Local", "days": days})
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    html = page.content.decode()
    link = re.search(
        r'value="http://neuro.localhost(/shared/[^"]+/)" readonly data-testid="share-link"', html
    )
    code = re.search(r'data-testid="share-code">([0-9A-Z-]+)<', html)
    assert link and code, html
    return link.group(1), code.group(1)


def _doctor() -> Client:
    return Client(HTTP_HOST="neuro.localhost")


def test_a_doctor_reads_the_opinion_with_the_link_and_the_code(
    neuro: Institution, released: Case, patient: Client
) -> None:
    link, code = _share(patient, released)
    doctor = _doctor()
    page = doctor.get(link).content.decode()
    assert OPINION["findings"] not in page and 'name="code"' in page  # the link alone opens nothing
    assert doctor.post(link, {"code": code.lower()})["Location"] == link  # typed in lower case: fine
    page = doctor.get(link).content.decode()
    assert OPINION["findings"] in page
    pdf = doctor.get(link + "pdf")
    assert pdf.status_code == 302 and doctor.get(pdf["Location"]).getvalue().startswith(b"%PDF")
    # Neither the token nor the code is stored.
    with schema_context(neuro.schema_name):
        share = OpinionShare.objects.get(case=released)
        token = link.split("/")[2]
        assert token not in (share.token_sha256, share.code_sha256) and share.last_opened_at
        actions = list(
            AuditEvent.objects.filter(case_id=released.pk, action__startswith="share.").values_list(
                "action", "allowed"
            )
        )
    assert ("share.create", True) in actions and ("share.open", True) in actions
    assert (
        ("share.code", True) in actions and ("share.view", True) in actions and ("share.pdf", True) in actions
    )
    # The patient sees their link and when it was last opened.
    assert "Dr. Local" in patient.get(f"/opinions/{released.public_id}/").content.decode()


def test_wrong_codes_are_refused_then_the_link_locks(
    neuro: Institution, released: Case, patient: Client
) -> None:
    link, code = _share(patient, released)
    doctor = _doctor()
    for _ in range(ATTEMPTS_BEFORE_LOCK - 1):
        response = doctor.post(link, {"code": "AAAAA-AAAAA"})
        assert response.status_code == 400 and "not right" in response.content.decode()
    assert "locked" in doctor.post(link, {"code": "AAAAA-AAAAA"}).content.decode()
    # Locked: even the right code waits.
    response = doctor.post(link, {"code": code})
    assert response.status_code == 400 and OPINION["findings"] not in doctor.get(link).content.decode()
    assert doctor.get(link + "pdf")["Location"] == link
    with schema_context(neuro.schema_name):
        assert AuditEvent.objects.filter(case_id=released.pk, action="share.code", allowed=False).count() == 6


def test_a_withdrawn_or_expired_link_opens_nothing(
    neuro: Institution, released: Case, patient: Client
) -> None:
    link, code = _share(patient, released)
    doctor = _doctor()
    doctor.post(link, {"code": code})
    assert OPINION["findings"] in doctor.get(link).content.decode()
    with schema_context(neuro.schema_name):
        share = OpinionShare.objects.get(case=released)
    patient.post(f"/opinions/{released.public_id}/share/revoke", {"share": str(share.public_id)})
    for url in (link, link + "pdf"):
        response = doctor.get(url)
        assert response.status_code == 404 and OPINION["findings"] not in response.content.decode()
    # Another link, expired.
    link, code = _share(patient, released, days=7)
    with schema_context(neuro.schema_name):
        OpinionShare.objects.filter(revoked_at__isnull=True).update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
    assert _doctor().post(link, {"code": code}).status_code == 404
    assert _doctor().get("/shared/not-a-real-token/").status_code == 404


def test_outsiders_cannot_make_or_withdraw_links(
    neuro: Institution,
    released: Case,
    patient: Client,
    cancer_client: Client,
) -> None:
    link, code = _share(patient, released)
    with schema_context(neuro.schema_name):
        share = OpinionShare.objects.get(case=released)
        from accounts.models import User

        User.objects.create_user("other-patient@example.com", "a-long-password-1")
    other = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(other, "other-patient@example.com")
    staff_force_login(cancer_client, "patient@cancer.example.com")
    signed_out = Client(HTTP_HOST="neuro.localhost")
    for client in (other, cancer_client, signed_out):
        made = client.post(f"/opinions/{released.public_id}/share", {"days": 30})
        withdrawn = client.post(
            f"/opinions/{released.public_id}/share/revoke", {"share": str(share.public_id)}
        )
        for response in (made, withdrawn):
            assert response.status_code in (302, 404)
            if response.status_code == 302:
                assert "/accounts/login/" in response["Location"]
    with schema_context(neuro.schema_name):
        assert OpinionShare.objects.filter(case=released).count() == 1
        assert OpinionShare.objects.get(pk=share.pk).revoked_at is None
    # The link of one institution means nothing at another.
    assert cancer_client.post(link, {"code": code}).status_code == 404


def test_no_link_before_the_opinion_is_released(
    neuro: Institution, assigned_case: Case, patient: Client
) -> None:
    response = patient.post(f"/opinions/{assigned_case.public_id}/share", {"days": 30})
    assert response.status_code == 302
    with schema_context(neuro.schema_name):
        assert not OpinionShare.objects.filter(case=assigned_case).exists()
