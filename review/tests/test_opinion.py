"""The opinion: drafted with autosave, signed after proving who one is, frozen, released, read
and downloaded by the patient, who may ask a limited number of follow-up questions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client, TestCase, override_settings
from django_tenants.utils import schema_context
from pypdf import PdfReader

from audit.models import AuditEvent
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.models import CaseAssignment, Opinion
from review.services import (
    FOLLOW_UP_LIMIT_MESSAGE,
    OPINION_INCOMPLETE_MESSAGE,
    OPINION_SIGNED_MESSAGE,
    PROOF_NEEDED_MESSAGE,
    WRONG_SECRET_MESSAGE,
)
from storage.tenant import tenant_storage
from storage.views import INVALID_LINK_MESSAGE
from tenants.models import Institution
from tests.cases import user_in
from tests.outbox import outbox_summaries
from tests.staff import staff_force_login

OPINION = {
    "question_restated": "Is the lesion a tumour, and is surgery needed?",
    "findings": "A 2 cm non-enhancing lesion in the left frontal lobe.",
    "impression": "Most consistent with a low-grade glioma.",
    "agreement": "agree",
    "recommendation": "surgery",
    "comments": "Discuss resection with your neurosurgeon.",
}


@pytest.fixture
def assigned_case(neuro: Institution, make_case: Callable[..., Case]) -> Case:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    return case


def _url(case: Case, tail: str) -> str:
    return f"/workspace/cases/{case.public_id}/{tail}"


def _signed(reviewer: Client, case: Case) -> None:
    reviewer.post(_url(case, "opinion/draft"), OPINION)
    # As in production, the PDF is written once the signature commits.
    with TestCase.captureOnCommitCallbacks(execute=True):
        reviewer.post(_url(case, "opinion/sign"), {"secret": DEMO_PASSWORD})


def test_it_autosaves_the_draft_as_json(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    response = reviewer.post(
        _url(assigned_case, "opinion/draft"),
        {"findings": "So far: a lesion."},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200 and response.json()["saved"] is True
    with schema_context(neuro.schema_name):
        opinion = Opinion.objects.get(case=assigned_case)
        assigned_case.refresh_from_db()
    assert opinion.findings == "So far: a lesion."
    assert opinion.question_restated == assigned_case.question  # prefilled from the patient's words
    assert assigned_case.status == Case.Status.IN_REVIEW


def test_it_lets_only_the_assigned_reviewer_write(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    for role in ("reviewer2", "coordinator"):
        response = staff_client(role).post(_url(assigned_case, "opinion/draft"), {"findings": "Not mine."})
        assert response.status_code in (403, 404)
    with schema_context(neuro.schema_name):
        assert not Opinion.objects.filter(case=assigned_case).exists()
        assert (
            AuditEvent.objects.filter(action="opinion.draft", allowed=False, case_id=assigned_case.pk).count()
            == 2
        )


def test_it_refuses_to_sign_with_a_wrong_password_or_an_incomplete_opinion(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), {"findings": "Only findings."})
    page = reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": "wrong-password"}, follow=True)
    assert WRONG_SECRET_MESSAGE in page.content.decode()
    page = reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": DEMO_PASSWORD}, follow=True)
    assert OPINION_INCOMPLETE_MESSAGE in page.content.decode()
    with schema_context(neuro.schema_name):
        assert Opinion.objects.get(case=assigned_case).signed_at is None


def test_it_signs_without_asking_again_right_after_signing_in(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")  # signed in (password and code) just now
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    page = reviewer.get(_url(assigned_case, "")).content.decode()
    assert 'data-testid="sign-no-secret"' in page and 'name="secret"' not in page
    with TestCase.captureOnCommitCallbacks(execute=True):
        reviewer.post(_url(assigned_case, "opinion/sign"), {})
    with schema_context(neuro.schema_name):
        assert Opinion.objects.get(case=assigned_case).signed_at is not None


@override_settings(ACCOUNT_REAUTHENTICATION_TIMEOUT=0)
def test_it_asks_for_the_password_to_sign_once_the_sign_in_is_not_recent(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    assert 'name="secret"' in reviewer.get(_url(assigned_case, "")).content.decode()
    page = reviewer.post(_url(assigned_case, "opinion/sign"), {}, follow=True).content.decode()
    assert PROOF_NEEDED_MESSAGE in page
    with schema_context(neuro.schema_name):
        assert Opinion.objects.get(case=assigned_case).signed_at is None
    with TestCase.captureOnCommitCallbacks(execute=True):
        reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    with schema_context(neuro.schema_name):
        assert Opinion.objects.get(case=assigned_case).signed_at is not None


def test_it_signs_freezes_and_renders_a_branded_pdf(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    _signed(reviewer, assigned_case)
    with schema_context(neuro.schema_name):
        opinion = Opinion.objects.get(case=assigned_case)
        assigned_case.refresh_from_db()
        pdf = tenant_storage().read_bytes(opinion.pdf_key)
    assert opinion.signed_at is not None
    assert opinion.signer_name == "Dr. Robin Reyes"
    assert opinion.signer_credentials == "MD, Neuroradiology"
    assert assigned_case.status == Case.Status.OPINION_DRAFTED
    import io

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Northfield Neurological Institute" in text
    assert str(assigned_case.number) in text
    assert "Dr. Robin Reyes, MD, Neuroradiology" in text
    assert "low-grade glioma" in text

    # Editing after signing is refused, changes nothing, and is on record.
    response = reviewer.post(
        _url(assigned_case, "opinion/draft"), {"findings": "Changed my mind."}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 409 and response.json()["error"] == OPINION_SIGNED_MESSAGE
    with schema_context(neuro.schema_name):
        assert Opinion.objects.get(case=assigned_case).findings == OPINION["findings"]
        assert AuditEvent.objects.filter(
            action="opinion.edit_signed", allowed=False, case_id=assigned_case.pk
        ).exists()
        assert AuditEvent.objects.filter(
            action="opinion.sign", allowed=True, case_id=assigned_case.pk
        ).exists()


def test_it_signs_with_an_authenticator_code_too(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    from django.core.cache import cache

    from tests.staff import totp_code

    # allauth refuses a code used once already; other tests may have signed reviewer1 in with
    # this very code moments ago (the test cache lives as long as the test process).
    cache.clear()
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": totp_code()})
    with schema_context(neuro.schema_name):
        assert Opinion.objects.get(case=assigned_case).signed_at is not None


def test_it_releases_to_the_patient_who_reads_and_downloads_it(
    neuro: Institution,
    assigned_case: Case,
    staff_client: Callable[[str], Client],
    neuro_client: Client,
    outbox_email: None,
) -> None:
    reviewer = staff_client("reviewer1")
    _signed(reviewer, assigned_case)
    staff_force_login(neuro_client, "patient@neuro.example.com")
    page = neuro_client.get(f"/opinions/{assigned_case.public_id}/").content.decode()
    assert "not ready yet" in page and OPINION["findings"] not in page  # not before release
    before = outbox_summaries(neuro.schema_name)
    staff_client("coordinator").post(_url(assigned_case, "opinion/release"))
    # The patient is told (the email written with the release).
    assert outbox_summaries(neuro.schema_name)[len(before) :] == [
        f"Your second opinion is ready ({assigned_case.number})"
    ]
    with schema_context(neuro.schema_name):
        assigned_case.refresh_from_db()
    assert assigned_case.status == Case.Status.RELEASED

    page = neuro_client.get(f"/opinions/{assigned_case.public_id}/").content.decode()
    assert OPINION["findings"] in page and "Dr. Robin Reyes" in page
    response = neuro_client.get(f"/opinions/{assigned_case.public_id}/pdf")
    assert response.status_code == 302
    signed_url = response["Location"]
    download = neuro_client.get(signed_url)
    assert download.status_code == 200
    assert download.getvalue().startswith(b"%PDF")
    # A tampered link is refused.
    token = signed_url.rstrip("/").rsplit("/", 1)[1]
    tampered = signed_url.replace(token, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    refused = neuro_client.get(tampered)
    assert refused.status_code == 403 and refused.content.decode() == INVALID_LINK_MESSAGE
    with schema_context(neuro.schema_name):
        assert AuditEvent.objects.filter(
            action="opinion.view", case_id=assigned_case.pk, allowed=True
        ).exists()
        assert AuditEvent.objects.filter(
            action="opinion.download", case_id=assigned_case.pk, allowed=True
        ).exists()


def test_it_keeps_the_opinion_from_other_patients_and_institutions(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client], cancer_client: Client
) -> None:
    _signed(staff_client("reviewer1"), assigned_case)
    staff_client("coordinator").post(_url(assigned_case, "opinion/release"))
    stranger = Client(HTTP_HOST="neuro.localhost")
    with schema_context(neuro.schema_name):
        from accounts.models import User

        User.objects.create_user("stranger@example.com", "a-long-password-1")
    staff_force_login(stranger, "stranger@example.com")
    staff_force_login(cancer_client, "patient@cancer.example.com")
    for client in (stranger, cancer_client, Client(HTTP_HOST="neuro.localhost")):
        for tail in ("", "pdf"):
            response = client.get(f"/opinions/{assigned_case.public_id}/{tail}")
            assert response.status_code in (302, 404)
            if response.status_code == 302:
                assert "/accounts/login/" in response["Location"]
    with schema_context(neuro.schema_name):
        assert (
            AuditEvent.objects.filter(
                action__in=["opinion.view", "opinion.download"], allowed=False, case_id=assigned_case.pk
            ).count()
            >= 4
        )


def test_it_limits_follow_up_questions_to_the_institutions_number(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client], neuro_client: Client
) -> None:
    _signed(staff_client("reviewer1"), assigned_case)
    staff_client("coordinator").post(_url(assigned_case, "opinion/release"))
    staff_force_login(neuro_client, "patient@neuro.example.com")
    url = f"/opinions/{assigned_case.public_id}/"
    for n in range(3):
        assert neuro_client.post(url, {"question": f"Question {n}?"}).status_code == 302
    page = neuro_client.post(url, {"question": "One more?"}).content.decode()
    assert FOLLOW_UP_LIMIT_MESSAGE.format(limit=3) in page
    with schema_context(neuro.schema_name):
        assert assigned_case.follow_ups.count() == 3
        question = assigned_case.follow_ups.first()
        assert question is not None
    staff_client("reviewer1").post(
        _url(assigned_case, f"follow-ups/{question.pk}/answer"), {"answer": "Yes, within weeks."}
    )
    assert "Yes, within weeks." in neuro_client.get(url).content.decode()


def test_it_writes_the_pdf_only_once_the_signature_commits(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    with schema_context(neuro.schema_name):
        key = Opinion.objects.get(case=assigned_case).pdf_key
        assert key and not tenant_storage().exists(key)  # not before the commit
        for callback in callbacks:
            callback()
        assert tenant_storage().read_bytes(key).startswith(b"%PDF")


def test_it_leaves_no_pdf_behind_when_signing_rolls_back(
    neuro: Institution,
    assigned_case: Case,
    staff_client: Callable[[str], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from review import services

    staff_client("reviewer1").post(_url(assigned_case, "opinion/draft"), OPINION)

    def broken_status_change(**kwargs: object) -> None:
        raise RuntimeError("the database went away")

    # Fails after the PDF is rendered and its key set, inside the signing transaction.
    monkeypatch.setattr(services, "case_status_change", broken_status_change)
    with schema_context(neuro.schema_name):
        before = set(tenant_storage().list_keys("opinions/"))
        with pytest.raises(RuntimeError), TestCase.captureOnCommitCallbacks(execute=True):
            services.opinion_sign(
                case=assigned_case,
                signer=user_in(neuro, "reviewer1@neuro.example.com"),
                secret=DEMO_PASSWORD,
                institution=neuro,
            )
        assert set(tenant_storage().list_keys("opinions/")) == before
        opinion = Opinion.objects.get(case=assigned_case)
    assert opinion.signed_at is None and opinion.pdf_key == ""


def test_it_writes_a_lost_pdf_again_when_it_is_downloaded(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client], neuro_client: Client
) -> None:
    _signed(staff_client("reviewer1"), assigned_case)
    staff_client("coordinator").post(_url(assigned_case, "opinion/release"))
    with schema_context(neuro.schema_name):
        key = Opinion.objects.get(case=assigned_case).pdf_key
        tenant_storage().delete(key)  # its write after the commit failed
    staff_force_login(neuro_client, "patient@neuro.example.com")
    signed_url = neuro_client.get(f"/opinions/{assigned_case.public_id}/pdf")["Location"]
    download = neuro_client.get(signed_url)
    assert download.status_code == 200 and download.getvalue().startswith(b"%PDF")


def test_it_emails_the_patient_when_their_question_is_answered(
    neuro: Institution,
    assigned_case: Case,
    staff_client: Callable[[str], Client],
    neuro_client: Client,
    eager_tasks: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from django.core import mail

    from review.notifications import FOLLOW_UP_ANSWERED_SUBJECT, follow_up_answer_email_send

    _signed(staff_client("reviewer1"), assigned_case)
    staff_client("coordinator").post(_url(assigned_case, "opinion/release"))
    staff_force_login(neuro_client, "patient@neuro.example.com")
    question_text = "Could the lesion be a cavernoma instead?"
    neuro_client.post(f"/opinions/{assigned_case.public_id}/", {"question": question_text})
    with schema_context(neuro.schema_name):
        question = assigned_case.follow_ups.get()
    mail.outbox.clear()
    caplog.set_level("DEBUG")
    with TestCase.captureOnCommitCallbacks(execute=True):
        staff_client("reviewer1").post(
            _url(assigned_case, f"follow-ups/{question.pk}/answer"), {"answer": "Unlikely: no blooming."}
        )
    (email,) = mail.outbox
    assert email.from_email.startswith("Northfield Neurological Institute <")
    assert email.to == ["patient@neuro.example.com"]
    assert email.subject == f"{FOLLOW_UP_ANSWERED_SUBJECT} ({assigned_case.number})"
    assert f"/opinions/{assigned_case.public_id}/" in email.body
    html = str(email.alternatives[0][0])  # type: ignore[attr-defined]
    for private in (question_text, "no blooming"):  # read signed in, never by email or in logs
        assert private not in email.body and private not in html
        assert private not in caplog.text
    # A second delivery of the task sends nothing more.
    with schema_context(neuro.schema_name):
        assert follow_up_answer_email_send(question_id=question.pk) is False
    assert len(mail.outbox) == 1


def test_it_limits_signing_attempts(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    from django.core.cache import cache
    from django.test import override_settings

    from accounts.ratelimits import TOO_MANY_ATTEMPTS
    from config.settings.base import SR_RATE_LIMITS

    reviewer = staff_client("reviewer1")
    reviewer.post(_url(assigned_case, "opinion/draft"), OPINION)
    cache.clear()
    with override_settings(ACCOUNT_RATE_LIMITS=SR_RATE_LIMITS):
        for _ in range(5):
            page = reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": "guess"}, follow=True)
            assert WRONG_SECRET_MESSAGE in page.content.decode()
        page = reviewer.post(_url(assigned_case, "opinion/sign"), {"secret": DEMO_PASSWORD}, follow=True)
    cache.clear()
    assert TOO_MANY_ATTEMPTS in page.content.decode()
    with schema_context(neuro.schema_name):
        assert Opinion.objects.get(case=assigned_case).signed_at is None
