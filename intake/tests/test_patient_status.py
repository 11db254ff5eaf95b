"""A patient follows their cases: a list, and a status page per case in plain words."""

from __future__ import annotations

from django.test import Client

from intake.models import Case
from intake.selectors import PATIENT_STATUSES
from intake.tests.test_wizard import new_case, patient_user, signed_in
from tenants.models import Institution


def test_it_lists_only_the_patients_own_cases(neuro: Institution) -> None:
    me, someone = patient_user(neuro), patient_user(neuro)
    mine = new_case(neuro, me, number="NNI-900001", status=Case.Status.SUBMITTED)
    theirs = new_case(neuro, someone, number="NNI-900002", status=Case.Status.SUBMITTED)
    page = signed_in(neuro, me).get("/cases/").content.decode()
    assert "NNI-900001" in page and str(mine.public_id) in page
    assert "NNI-900002" not in page and str(theirs.public_id) not in page


def test_it_lists_the_cases_on_the_portal_home(neuro: Institution) -> None:
    me = patient_user(neuro)
    new_case(neuro, me, number="NNI-900003", status=Case.Status.IN_REVIEW)
    page = signed_in(neuro, me).get("/").content.decode()
    assert "NNI-900003" in page and PATIENT_STATUSES[Case.Status.IN_REVIEW].label in page


def test_it_shows_each_state_in_plain_words(neuro: Institution) -> None:
    me = patient_user(neuro)
    client = signed_in(neuro, me)
    for status in (Case.Status.SUBMITTED, Case.Status.IN_REVIEW, Case.Status.RELEASED, Case.Status.DECLINED):
        case = new_case(neuro, me, status=status)
        page = client.get(f"/cases/{case.public_id}/").content.decode()
        assert PATIENT_STATUSES[status].label in page, status
        assert PATIENT_STATUSES[status].explanation in page, status


def test_it_shows_the_care_teams_request_and_the_way_back_to_the_uploads(neuro: Institution) -> None:
    me = patient_user(neuro)
    client = signed_in(neuro, me)
    case = new_case(
        neuro,
        me,
        number="NNI-900004",
        status=Case.Status.INFO_REQUESTED,
        status_note="Please add the MRI from March.",
        consented_at="2026-01-01T00:00:00Z",
    )
    page = client.get(f"/cases/{case.public_id}/").content.decode()
    assert "Please add the MRI from March." in page
    assert f"/cases/{case.public_id}/images/" in page
    # The file steps open again; the patient's details stay as sent.
    assert client.get(f"/cases/{case.public_id}/images/").status_code == 200
    assert client.get(f"/cases/{case.public_id}/patient/").status_code == 302


def test_it_links_a_ready_opinion(neuro: Institution) -> None:
    me = patient_user(neuro)
    case = new_case(neuro, me, number="NNI-900005", status=Case.Status.RELEASED)
    page = signed_in(neuro, me).get(f"/cases/{case.public_id}/").content.decode()
    assert "Opinion ready" in page
    assert f'href="/opinions/{case.public_id}/"' in page


def test_it_refuses_the_status_page_to_outsiders(
    neuro: Institution, cancer: Institution, neuro_client: Client
) -> None:
    me = patient_user(neuro)
    case = new_case(neuro, me, status=Case.Status.SUBMITTED)
    assert signed_in(neuro, patient_user(neuro)).get(f"/cases/{case.public_id}/").status_code == 404
    assert signed_in(cancer, patient_user(cancer)).get(f"/cases/{case.public_id}/").status_code == 404
    assert neuro_client.get(f"/cases/{case.public_id}/").status_code == 302
