"""Peer review: a second reviewer countersigns a signed opinion before release (asked for, or
sampled at the institution's rate); a disagreement holds the release until the peer agrees or an
administrator overrides it with a reason; the case page and the dashboard show where it stands."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.utils.html import escape
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from institutions.management.commands.seed_demo import DEMO_PASSWORD
from intake.models import Case
from review.models import CaseAssignment, Opinion, PeerReview, ReviewSettings, StaffNotification
from review.peer_review import (
    PEER_DISAGREE_COMMENT_MESSAGE,
    PEER_DISAGREES_MESSAGE,
    PEER_NOT_A_PEER_MESSAGE,
    PEER_WAITING_MESSAGE,
    PEER_WRONG_SECRET_MESSAGE,
)
from review.tests.test_opinion import OPINION
from tenants.models import Institution
from tests.cases import user_in
from tests.staff import staff_force_login

DISAGREEMENT = "The lesion enhances on the post-contrast series: a high-grade tumour is not excluded."


@pytest.fixture
def signed_case(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> Case:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(case, "opinion/draft"), OPINION)
    reviewer.post(_url(case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    return case


def _url(case: Case, tail: str) -> str:
    return f"/workspace/cases/{case.public_id}/{tail}"


def _ask(
    staff_client: Callable[[str], Client], case: Case, neuro: Institution, by: str = "coordinator"
) -> None:
    peer = user_in(neuro, "reviewer2@neuro.example.com")
    response = staff_client(by).post(_url(case, "peer-review/request"), {"reviewer": peer.pk})
    assert response.status_code == 302


def _released(neuro: Institution, case: Case) -> bool:
    with schema_context(neuro.schema_name):
        return Opinion.objects.get(case=case).released_at is not None


def test_it_holds_the_release_until_the_asked_peer_agrees(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client]
) -> None:
    _ask(staff_client, signed_case, neuro, by="reviewer1")  # the author may ask too
    with schema_context(neuro.schema_name):
        peer = user_in(neuro, "reviewer2@neuro.example.com")
        assert StaffNotification.objects.filter(user=peer, kind="peer_review", case=signed_case).exists()
    coordinator = staff_client("coordinator")
    page = coordinator.get(_url(signed_case, "")).content.decode()
    assert escape(PEER_WAITING_MESSAGE) in page and 'data-testid="release-opinion"' not in page
    page = coordinator.post(_url(signed_case, "opinion/release"), follow=True).content.decode()
    assert escape(PEER_WAITING_MESSAGE) in page
    assert not _released(neuro, signed_case)

    # The peer sees the case (reviewers otherwise see only their own) and countersigns.
    reviewer2 = staff_client("reviewer2")
    page = reviewer2.get(_url(signed_case, "")).content.decode()
    assert 'data-testid="peer-answer"' in page and OPINION["findings"] in page
    page = reviewer2.post(
        _url(signed_case, "peer-review/answer"), {"verdict": "agree", "secret": "wrong"}, follow=True
    ).content.decode()
    assert escape(PEER_WRONG_SECRET_MESSAGE) in page
    reviewer2.post(_url(signed_case, "peer-review/answer"), {"verdict": "agree", "secret": DEMO_PASSWORD})
    with schema_context(neuro.schema_name):
        review = PeerReview.objects.get(case=signed_case)
        assert review.verdict == "agree" and review.answered_at is not None
        assert AuditEvent.objects.filter(
            action="peer_review.answer", allowed=True, object_ref=str(review.public_id)
        ).exists()
        assert AuditEvent.objects.filter(
            action="peer_review.answer", allowed=False, case_id=signed_case.pk
        ).exists()
    coordinator.post(_url(signed_case, "opinion/release"))
    assert _released(neuro, signed_case)


def test_it_holds_a_disagreement_until_the_peer_agrees_after_all(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client]
) -> None:
    _ask(staff_client, signed_case, neuro)
    reviewer2 = staff_client("reviewer2")
    page = reviewer2.post(
        _url(signed_case, "peer-review/answer"), {"verdict": "disagree", "secret": DEMO_PASSWORD}, follow=True
    ).content.decode()
    assert escape(PEER_DISAGREE_COMMENT_MESSAGE) in page  # a disagreement says why
    reviewer2.post(
        _url(signed_case, "peer-review/answer"),
        {"verdict": "disagree", "comment": DISAGREEMENT, "secret": DEMO_PASSWORD},
    )
    with schema_context(neuro.schema_name):
        author = user_in(neuro, "reviewer1@neuro.example.com")
        assert StaffNotification.objects.filter(user=author, kind="peer_disagreed").exists()
    # The author reads the disagreement on the case; nobody can release.
    page = staff_client("reviewer1").get(_url(signed_case, "")).content.decode()
    assert escape(DISAGREEMENT) in page and escape(PEER_DISAGREES_MESSAGE) in page
    for role in ("reviewer1", "coordinator"):
        staff_client(role).post(_url(signed_case, "opinion/release"))
    assert not _released(neuro, signed_case)
    # The dashboard lists it.
    board = staff_client("coordinator").get("/workspace/dashboard/").content.decode()
    assert "1</strong> disagreement to resolve" in board and str(signed_case.number) in board
    # Resolved: the peer agrees after all (e.g. after an addendum); the release goes through.
    reviewer2.post(
        _url(signed_case, "peer-review/answer"),
        {"verdict": "agree", "comment": "Addendum covers it.", "secret": DEMO_PASSWORD},
    )
    staff_client("coordinator").post(_url(signed_case, "opinion/release"))
    assert _released(neuro, signed_case)


def test_it_lets_only_an_admin_override_a_disagreement_and_only_with_a_reason(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client]
) -> None:
    _ask(staff_client, signed_case, neuro)
    staff_client("reviewer2").post(
        _url(signed_case, "peer-review/answer"),
        {"verdict": "disagree", "comment": DISAGREEMENT, "secret": DEMO_PASSWORD},
    )
    with schema_context(neuro.schema_name):
        review = PeerReview.objects.get(case=signed_case)
    url = _url(signed_case, f"peer-review/{review.public_id}/override")
    assert staff_client("coordinator").post(url, {"reason": "Urgent."}).status_code == 403
    assert staff_client("reviewer1").post(url, {"reason": "Urgent."}).status_code == 403
    admin = staff_client("admin")
    admin.post(url, {"reason": "  "})
    with schema_context(neuro.schema_name):
        assert PeerReview.objects.get(pk=review.pk).overridden_at is None
    reason = "Tumour board on 3 Dec discussed both readings; the patient needs the opinion now."
    page = admin.post(url, {"reason": reason}, follow=True).content.decode()
    assert escape(reason) in page and 'data-testid="release-opinion"' in page
    with schema_context(neuro.schema_name):
        review.refresh_from_db()
        assert review.overridden_by == user_in(neuro, "admin@neuro.example.com")
        assert AuditEvent.objects.filter(action="peer_review.override", allowed=True).exists()
        assert AuditEvent.objects.filter(action="peer_review.override", allowed=False).count() == 2
    staff_client("coordinator").post(_url(signed_case, "opinion/release"))
    assert _released(neuro, signed_case)


def test_it_samples_signed_opinions_at_the_admins_rate(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    admin = staff_client("admin")
    admin.post(
        "/workspace/settings",
        {
            "turnaround_business_days": 5,
            "soon_due_business_days": 2,
            "session_idle_minutes": 15,
            "reviewers_see_only_assigned": "on",
            "follow_up_questions_allowed": 3,
            "peer_review_percent": 100,
        },
    )
    with schema_context(neuro.schema_name):
        assert ReviewSettings.objects.get().peer_review_percent == 100
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(case, "opinion/draft"), OPINION)
    reviewer.post(_url(case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    with schema_context(neuro.schema_name):
        review = PeerReview.objects.get(case=case)
    # The other reviewer (never the author) was chosen, and the release waits for them.
    assert review.sampled and review.reviewer == user_in(neuro, "reviewer2@neuro.example.com")
    page = staff_client("coordinator").post(_url(case, "opinion/release"), follow=True).content.decode()
    assert escape(PEER_WAITING_MESSAGE) in page and not _released(neuro, case)


def test_it_refuses_the_author_as_their_own_peer(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client]
) -> None:
    author = user_in(neuro, "reviewer1@neuro.example.com")
    page = (
        staff_client("coordinator")
        .post(_url(signed_case, "peer-review/request"), {"reviewer": author.pk}, follow=True)
        .content.decode()
    )
    assert escape(PEER_NOT_A_PEER_MESSAGE) in page
    with schema_context(neuro.schema_name):
        assert not PeerReview.objects.exists()


def test_it_refuses_peer_review_steps_to_outsiders(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client], cancer_client: Client
) -> None:
    _ask(staff_client, signed_case, neuro)
    with schema_context(neuro.schema_name):
        review = PeerReview.objects.get(case=signed_case)
        peer_id = review.reviewer_id
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    staff_force_login(cancer_client, "admin@cancer.example.com")
    signed_out = Client(HTTP_HOST="neuro.localhost")
    steps = [
        ("peer-review/request", {"reviewer": peer_id}),
        ("peer-review/answer", {"verdict": "disagree", "comment": "x", "secret": DEMO_PASSWORD}),
        (f"peer-review/{review.public_id}/override", {"reason": "x"}),
    ]
    # The patient, another institution's admin, someone signed out: none of the steps. The
    # author may ask but not answer; the coordinator neither answers nor overrides.
    for client in (patient, cancer_client, signed_out):
        for tail, data in steps:
            response = client.post(_url(signed_case, tail), data)
            assert response.status_code in (302, 403, 404), tail
            if response.status_code == 302:
                assert "/accounts/login/" in response["Location"]
    for role, tail, data in (
        ("reviewer1", *steps[1]),
        ("coordinator", *steps[1]),
        ("coordinator", *steps[2]),
    ):
        assert staff_client(role).post(_url(signed_case, tail), data).status_code in (403, 404)
    with schema_context(neuro.schema_name):
        review.refresh_from_db()
        assert review.verdict == "pending" and review.overridden_at is None
        assert AuditEvent.objects.filter(action__startswith="peer_review.", allowed=False).count() >= 9


def test_it_asks_coordinators_to_choose_a_peer_when_no_one_is_free_at_sampling(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    from review.models import ReviewerProfile

    with schema_context(neuro.schema_name):
        ReviewSettings.objects.update_or_create(pk=1, defaults={"peer_review_percent": 100})
        peer = user_in(neuro, "reviewer2@neuro.example.com")
        ReviewerProfile.objects.update_or_create(user=peer, defaults={"available": False})
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    reviewer = staff_client("reviewer1")
    reviewer.post(_url(case, "opinion/draft"), OPINION)
    reviewer.post(_url(case, "opinion/sign"), {"secret": DEMO_PASSWORD})
    with schema_context(neuro.schema_name):
        review = PeerReview.objects.get(case=case)
        coordinator = user_in(neuro, "coordinator@neuro.example.com")
        assert review.reviewer is None
        assert StaffNotification.objects.filter(user=coordinator, kind="peer_unassigned", case=case).exists()
    board = staff_client("coordinator").get("/workspace/dashboard/").content.decode()
    assert "no peer chosen" in board
    # The coordinator names one (back from leave): the same waiting review is theirs now.
    _ask(staff_client, case, neuro)
    with schema_context(neuro.schema_name):
        assert PeerReview.objects.get(case=case).reviewer == peer
        assert StaffNotification.objects.filter(user=peer, kind="peer_review", case=case).exists()


def test_it_flags_held_cases_in_the_queue_and_puts_them_first_for_the_peer(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client]
) -> None:
    _ask(staff_client, signed_case, neuro)
    queue = staff_client("reviewer2").get("/workspace/?state=all").content.decode()
    assert "Peer review for you" in queue and str(signed_case.number) in queue
    queue = staff_client("coordinator").get("/workspace/?state=all").content.decode()
    row = queue.split(str(signed_case.number))[1].split("</td>")[0]
    assert 'data-testid="peer-flag"' in row and "Peer review for you" not in row
    staff_client("reviewer2").post(
        _url(signed_case, "peer-review/answer"), {"verdict": "agree", "secret": DEMO_PASSWORD}
    )
    queue = staff_client("coordinator").get("/workspace/?state=all").content.decode()
    assert 'data-testid="peer-flag"' not in queue


def test_it_lets_the_peer_read_the_cases_images_only_once_asked(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client]
) -> None:
    peer = staff_client("reviewer2")
    studies = f"/dicomweb/cases/{signed_case.public_id}/studies"
    assert peer.get(studies).status_code == 404  # reviewers see only their own cases
    assert peer.get(_url(signed_case, "")).status_code == 404
    _ask(staff_client, signed_case, neuro)
    response = peer.get(studies)
    assert response.status_code == 200 and len(response.json()) == 1


def test_it_asks_the_peer_for_the_password_only_once_the_sign_in_is_not_recent(
    neuro: Institution, signed_case: Case, staff_client: Callable[[str], Client]
) -> None:
    from django.test import override_settings

    from review.peer_review import PEER_PROOF_NEEDED_MESSAGE

    _ask(staff_client, signed_case, neuro)
    peer = staff_client("reviewer2")
    url = _url(signed_case, "peer-review/answer")
    with override_settings(ACCOUNT_REAUTHENTICATION_TIMEOUT=0):
        assert 'id="id_peer_secret"' in peer.get(_url(signed_case, "")).content.decode()
        page = peer.post(url, {"verdict": "agree"}, follow=True).content.decode()
        assert escape(PEER_PROOF_NEEDED_MESSAGE) in page
        with schema_context(neuro.schema_name):
            assert PeerReview.objects.get(case=signed_case).verdict == "pending"
    # Signed in minutes ago (as the opinion is signed): the session stands for the proof.
    page = peer.get(_url(signed_case, "")).content.decode()
    assert 'data-testid="peer-no-secret"' in page and 'id="id_peer_secret"' not in page
    peer.post(url, {"verdict": "agree"})
    with schema_context(neuro.schema_name):
        assert PeerReview.objects.get(case=signed_case).verdict == "agree"
