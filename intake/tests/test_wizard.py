"""The request wizard, step by step: saved at each step, plain messages, outsiders refused."""

# long module: one test per wizard step in the order a patient meets them, with
# the outsiders' refusals beside the step they guard.

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import Http404
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from imaging.models import FileProblem, Report, Study, Upload
from intake import forms as intake_forms
from intake import selectors
from intake.access import access_patient_case
from intake.models import Case
from intake.services import case_patient_save, case_question_save
from tenants.models import Institution
from tests.outbox import outbox_summaries

STEP_PATHS = ("patient", "question", "images", "reports", "summary")
CASE_PATHS = ("", *(f"{step}/" for step in STEP_PATHS), "payment/", "submitted/", "images/status.json")

PATIENT_STEP = {
    "submitter_relation": "family",
    "submitter_name": "Robin Relative",
    "patient_name": "Alex Example",
    "patient_birth_date": "1961-04-23",
    "patient_sex": "F",
    "patient_email": "alex@example.com",
    "patient_phone": "",
    "consent": "on",
}
QUESTION_STEP = {
    "diagnosis_to_review": "Glioma seen on MRI",
    "question": "Is surgery the right next step?",
    "history": "Headaches for six months.",
    "current_physician": "Dr. Local, City Hospital",
    "urgency": "soon",
}


def patient_user(institution: Institution, email: str = "") -> User:
    """A patient of ``institution`` (made in its schema)."""
    with tenant_context(institution):
        return User.objects.create_user(
            email or f"{uuid.uuid4().hex[:10]}@patients.example.com",
            "a-long-password-1",
            full_name="Pat Test",
        )


def signed_in(institution: Institution, user: User) -> Client:
    client = Client(HTTP_HOST=institution.domains.get(is_primary=True).domain)
    with tenant_context(institution):
        client.force_login(user)
    return client


def new_case(institution: Institution, owner: User, **fields: Any) -> Case:
    with tenant_context(institution):
        return Case.objects.create(owner=owner, **fields)


def ready_case(institution: Institution, owner: User) -> Case:
    """A draft with step 1 and 2 filled in and one imaging file received."""
    with tenant_context(institution):
        case = Case.objects.create(owner=owner)
        case_patient_save(
            case=case,
            submitter_relation="self",
            submitter_name="",
            patient_name="Alex Example",
            patient_birth_date=datetime.date(1961, 4, 23),
            patient_sex="F",
            patient_email=owner.email,
            patient_phone="",
            consent=True,
        )
        case_question_save(
            case=case,
            diagnosis_to_review="Glioma",
            question="Surgery?",
            history="",
            current_physician="",
            urgency="routine",
        )
        add_upload(case, kind=Upload.Kind.IMAGING, status=Upload.Status.DONE)
        Study.objects.create(
            case=case,
            study_instance_uid=f"1.2.826.{case.pk}",
            modalities="MR",
            series_count=1,
            instance_count=1,
        )
        return case


def add_upload(case: Case, *, kind: str, status: str, **metadata: str) -> Upload:
    return Upload.objects.create(
        case=case,
        owner=case.owner,
        kind=kind,
        status=status,
        storage_key=f"uploads/{uuid.uuid4()}",
        metadata=metadata,
    )


def reload(institution: Institution, case: Case) -> Case:
    with tenant_context(institution):
        return Case.objects.get(pk=case.pk)


@pytest.fixture
def patient(neuro: Institution) -> User:
    return patient_user(neuro)


@pytest.fixture
def client(neuro: Institution, patient: User) -> Client:
    return signed_in(neuro, patient)


@pytest.fixture
def case(neuro: Institution, patient: User) -> Iterator[Case]:
    yield new_case(neuro, patient)


def test_it_sends_a_logged_out_visitor_to_sign_in(neuro_client: Client, case: Case) -> None:
    for path in ("cases/", "cases/new/", *(f"cases/{case.public_id}/{suffix}" for suffix in CASE_PATHS)):
        response = neuro_client.get(f"/{path}")
        assert response.status_code == 302, path
        assert "/accounts/login/" in response["Location"], path


def test_it_hides_a_case_from_another_patient(neuro: Institution, case: Case) -> None:
    stranger = signed_in(neuro, patient_user(neuro))
    for suffix in CASE_PATHS:
        assert stranger.get(f"/cases/{case.public_id}/{suffix}").status_code == 404, suffix
    assert stranger.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP).status_code == 404
    assert stranger.post(f"/cases/{case.public_id}/summary/").status_code == 404
    assert reload(neuro, case).patient_name == ""


def test_it_hides_a_patients_case_from_staff_in_the_patient_portal(neuro: Institution, case: Case) -> None:
    # Staff read cases in the workspace (review.access); the patient portal is the owner's only.
    with tenant_context(neuro):
        coordinator = User.objects.get(email="coordinator@neuro.example.com")
        with pytest.raises(Http404):
            access_patient_case(coordinator, case.public_id)
        assert access_patient_case(case.owner, case.public_id) == case


def test_it_refuses_a_case_of_another_institution(cancer: Institution, case: Case) -> None:
    other = signed_in(cancer, patient_user(cancer))
    for suffix in CASE_PATHS:
        assert other.get(f"/cases/{case.public_id}/{suffix}").status_code == 404, suffix


def test_it_starts_a_request_and_reuses_an_empty_draft(
    neuro: Institution, client: Client, patient: User
) -> None:
    page = client.get("/cases/new/")
    assert page.status_code == 200 and b"Start" in page.content
    started = client.post("/cases/new/")
    with tenant_context(neuro):
        case = Case.objects.get(owner=patient)
    assert started["Location"] == f"/cases/{case.public_id}/patient/"
    # The empty draft is offered again rather than a second one.
    assert client.get("/cases/new/")["Location"] == f"/cases/{case.public_id}/patient/"
    with tenant_context(neuro):
        assert Case.objects.filter(owner=patient).count() == 1


def test_it_shows_the_step_and_how_many_there_are(client: Client, case: Case) -> None:
    page = client.get(f"/cases/{case.public_id}/patient/").content.decode()
    assert "Step 1 of 6" in page  # no payment step: neuro does not charge in the demo
    assert 'aria-current="step"' in page


def test_it_saves_the_patient_step_and_moves_on(neuro: Institution, client: Client, case: Case) -> None:
    response = client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    assert response["Location"] == f"/cases/{case.public_id}/question/"
    saved = reload(neuro, case)
    assert saved.patient_name == "Alex Example"
    assert saved.patient_birth_date == datetime.date(1961, 4, 23)
    assert saved.submitter_relation == "family" and saved.submitter_name == "Robin Relative"
    assert saved.consented_at is not None
    assert saved.wizard_step == "question"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"patient_name": ""}, intake_forms.PATIENT_NAME_REQUIRED),
        ({"patient_birth_date": ""}, intake_forms.BIRTH_DATE_REQUIRED),
        ({"patient_birth_date": "23 April"}, intake_forms.BIRTH_DATE_INVALID),
        ({"patient_birth_date": "2999-01-01"}, intake_forms.BIRTH_DATE_IN_FUTURE),
        ({"patient_sex": ""}, intake_forms.SEX_REQUIRED),
        ({"patient_email": "", "patient_phone": ""}, intake_forms.CONTACT_REQUIRED),
        ({"submitter_name": ""}, intake_forms.SUBMITTER_NAME_REQUIRED),
        ({"consent": ""}, intake_forms.CONSENT_REQUIRED),
    ],
)
def test_it_explains_what_is_wrong_with_the_patient_step(
    neuro: Institution, client: Client, case: Case, change: dict[str, str], message: str
) -> None:
    data = {key: value for key, value in {**PATIENT_STEP, **change}.items() if value}
    response = client.post(f"/cases/{case.public_id}/patient/", data)
    assert response.status_code == 200
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert reload(neuro, case).patient_name == ""  # nothing stored half-way


def test_it_asks_for_consent_before_the_other_steps(client: Client, case: Case) -> None:
    for step in STEP_PATHS[1:]:
        response = client.get(f"/cases/{case.public_id}/{step}/")
        assert response["Location"] == f"/cases/{case.public_id}/patient/", step


def test_it_saves_the_question(neuro: Institution, client: Client, case: Case) -> None:
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    response = client.post(f"/cases/{case.public_id}/question/", QUESTION_STEP)
    assert response["Location"] == f"/cases/{case.public_id}/images/"
    saved = reload(neuro, case)
    assert (saved.diagnosis_to_review, saved.urgency) == ("Glioma seen on MRI", "soon")
    empty = client.post(f"/cases/{case.public_id}/question/", {**QUESTION_STEP, "question": ""})
    assert intake_forms.QUESTION_REQUIRED in empty.content.decode()


def test_it_brings_the_patient_back_to_the_step_they_left(
    neuro: Institution, client: Client, case: Case
) -> None:
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    client.post(f"/cases/{case.public_id}/question/", QUESTION_STEP)
    client.get(f"/cases/{case.public_id}/reports/")
    assert reload(neuro, case).wizard_step == "reports"
    # Back another day: the case's own page sends them to that step.
    assert client.get(f"/cases/{case.public_id}/")["Location"] == f"/cases/{case.public_id}/reports/"


def test_it_gives_the_upload_page_what_the_browser_needs(
    neuro: Institution, client: Client, patient: User
) -> None:
    case = ready_case(neuro, patient)
    page = client.get(f"/cases/{case.public_id}/images/").content.decode()
    assert 'data-endpoint="/intake/tus/"' in page
    assert f'data-case="{case.public_id}"' in page
    assert "webkitdirectory" in page
    assert "dist/intake.js" in page


def test_it_calls_out_what_is_missing_on_the_summary(
    neuro: Institution, client: Client, patient: User
) -> None:
    case = ready_case(neuro, patient)
    page = client.get(f"/cases/{case.public_id}/summary/").content.decode()
    assert selectors.IMAGES_NO_REPORT in page
    with tenant_context(neuro):
        case.uploads.all().delete()
        case.studies.all().delete()
    page = client.get(f"/cases/{case.public_id}/summary/").content.decode()
    assert selectors.MISSING_FILES in page
    with tenant_context(neuro):
        upload = add_upload(
            case,
            kind=Upload.Kind.REPORT,
            status=Upload.Status.DONE,
            filename="mri.pdf",
            reportKind="radiology",
        )
        Report.objects.create(
            case=case,
            upload=upload,
            kind="radiology",
            original_name="mri.pdf",
            content_type="application/pdf",
        )
    page = client.get(f"/cases/{case.public_id}/summary/").content.decode()
    assert selectors.NO_IMAGES_YET in page
    assert "mri.pdf (Radiology report)" in page


def test_it_flags_images_of_more_than_one_patient(neuro: Institution, client: Client, patient: User) -> None:
    case = ready_case(neuro, patient)
    with tenant_context(neuro):
        for uid, name in (("1.2.3", "DOE^JANE"), ("1.2.4", "ROE^RICHARD")):
            Study.objects.create(case=case, study_instance_uid=uid, patient_name_in_files=name)
    page = client.get(f"/cases/{case.public_id}/summary/").content.decode()
    assert selectors.MORE_THAN_ONE_PATIENT.replace("'", "&#x27;") in page


def test_it_refuses_to_send_an_incomplete_request(neuro: Institution, client: Client, case: Case) -> None:
    client.post(f"/cases/{case.public_id}/patient/", PATIENT_STEP)
    response = client.post(f"/cases/{case.public_id}/summary/")
    assert response.status_code == 400
    page = response.content.decode()
    assert selectors.MISSING_QUESTION in page and selectors.MISSING_FILES in page
    saved = reload(neuro, case)
    assert saved.status == Case.Status.DRAFT and saved.number is None


def test_it_sends_the_request_with_a_case_number(
    neuro: Institution, client: Client, patient: User, outbox_email: None
) -> None:
    case = ready_case(neuro, patient)
    response = client.post(f"/cases/{case.public_id}/summary/")
    assert response["Location"] == f"/cases/{case.public_id}/submitted/"
    saved = reload(neuro, case)
    assert saved.status == Case.Status.SUBMITTED
    assert saved.number and saved.number.startswith("NNI-")
    # The "received" email, written to the outbox with the submission (to the account: the
    # patient's own address is not confirmed yet).
    received = [s for s in outbox_summaries(neuro.schema_name) if "received" in s]
    assert received == [f"Your case has been received ({saved.number})"]
    page = client.get(f"/cases/{case.public_id}/submitted/").content.decode()
    assert saved.number in page
    # Sent means sent: the steps are closed, a second submission changes nothing.
    assert client.get(f"/cases/{case.public_id}/patient/")["Location"] == f"/cases/{case.public_id}/"
    assert client.post(f"/cases/{case.public_id}/summary/").status_code == 302
    assert reload(neuro, case).number == saved.number
    assert len([s for s in outbox_summaries(neuro.schema_name) if "received" in s]) == 1


def test_it_reports_the_servers_view_of_the_files(neuro: Institution, client: Client, patient: User) -> None:
    case = ready_case(neuro, patient)
    with tenant_context(neuro):
        add_upload(case, kind=Upload.Kind.IMAGING, status=Upload.Status.INGESTING)
        Study.objects.create(
            case=case,
            study_instance_uid="1.2.3",
            study_date=datetime.date(2004, 1, 19),
            modalities="CT",
            series_count=1,
            instance_count=1,
        )
        FileProblem.objects.create(
            case=case, path="CD/viewer/setup.exe", code=FileProblem.Code.SKIPPED_PROGRAM, message="Skipped."
        )
    data = client.get(f"/cases/{case.public_id}/images/status.json").json()
    assert data["uploads"] == {"imaging": 2, "processing": 1, "done": 1, "failed": 0, "unfinished": 0}
    # A batch the browser packed counts the files in it, not as one file.
    with tenant_context(neuro):
        add_upload(case, kind=Upload.Kind.IMAGING, status=Upload.Status.RECEIVED, batchFiles="40")
    data = client.get(f"/cases/{case.public_id}/images/status.json").json()
    assert data["uploads"] == {"imaging": 42, "processing": 41, "done": 1, "failed": 0, "unfinished": 0}
    ct = next(study for study in data["studies"] if study["modalities"] == "CT")
    assert {key: ct[key] for key in ("date", "description", "series", "images", "included", "warning")} == {
        "date": "2004-01-19",
        "description": "",
        "series": 1,
        "images": 1,
        "included": True,
        "warning": "",
    }
    assert data["problems"] == [
        {
            "title": "Viewer program or system file, skipped",
            "messages": ["Skipped."],
            "count": 1,
            "files": ["CD/viewer/setup.exe"],
            "informational": True,
        }
    ]


def test_it_numbers_cases_with_the_institutions_initials(neuro: Institution, cancer: Institution) -> None:
    assert selectors.institution_case_prefix(institution=neuro) == "NNI"
    assert selectors.institution_case_prefix(institution=cancer) == "LCC"


def test_it_sends_new_files_back_to_the_care_team_after_they_asked(
    neuro: Institution, client: Client, patient: User
) -> None:
    case = ready_case(neuro, patient)
    client.post(f"/cases/{case.public_id}/summary/")
    with tenant_context(neuro):
        Case.objects.filter(pk=case.pk).update(status=Case.Status.INFO_REQUESTED)
    page = client.get(f"/cases/{case.public_id}/summary/").content.decode()
    assert "Send the new information" in page
    response = client.post(f"/cases/{case.public_id}/summary/")
    assert response["Location"] == f"/cases/{case.public_id}/submitted/"
    assert reload(neuro, case).status == Case.Status.SUBMITTED


def test_it_asks_for_payment_when_the_institution_charges(
    neuro: Institution, client: Client, patient: User
) -> None:
    from decimal import Decimal

    from tenants.models import InstitutionSettings

    InstitutionSettings.objects.update_or_create(
        institution=neuro, defaults={"fee_enabled": True, "fee_amount": Decimal("100.00")}
    )
    case = ready_case(neuro, patient)
    assert "Step 1 of 7" in client.get(f"/cases/{case.public_id}/patient/").content.decode()
    response = client.post(f"/cases/{case.public_id}/summary/")
    assert response["Location"] == f"/cases/{case.public_id}/payment/"
    saved = reload(neuro, case)
    assert saved.status == Case.Status.AWAITING_PAYMENT and saved.number
    page = client.get(f"/cases/{case.public_id}/payment/").content.decode()
    assert f'href="/payments/case/{case.public_id}/"' in page  # the payments app's checkout
