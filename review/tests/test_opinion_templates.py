"""Opinion templates: administrators keep the institution's, reviewers their own; a reviewer
starts an opinion from one and it fills the empty sections, never what they wrote."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.utils.html import escape
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from intake.models import Case
from review.models import CaseAssignment, Opinion, OpinionTemplate
from review.opinion_templates import (
    TEMPLATE_EMPTY_MESSAGE,
    TEMPLATE_INSTITUTION_ONLY_ADMINS_MESSAGE,
    TEMPLATE_NOTHING_TO_FILL_MESSAGE,
)
from tenants.models import Institution
from tests.cases import user_in
from tests.staff import staff_force_login

GLIOMA = {
    "name": "MRI brain, tumour question",
    "findings": "Lesion: location, size, enhancement, mass effect.",
    "impression": "Most consistent with …",
    "recommendation": "further_imaging",
    "comments": "Discuss with your neurosurgeon.",
    "patient_summary": "",
}


@pytest.fixture
def assigned_case(neuro: Institution, make_case: Callable[..., Case]) -> Case:
    case = make_case(status=Case.Status.ASSIGNED)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
    return case


def _template(neuro: Institution, *, owner_email: str | None, name: str = "Shared") -> OpinionTemplate:
    with schema_context(neuro.schema_name):
        owner = user_in(neuro, owner_email) if owner_email else None
        return OpinionTemplate.objects.create(
            name=name,
            owner=owner,
            created_by=owner or user_in(neuro, "admin@neuro.example.com"),
            findings="Template findings.",
            impression="Template impression.",
            recommendation="no_change",
        )


def test_it_lets_an_admin_write_the_institutions_template_that_every_reviewer_sees(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    admin = staff_client("admin")
    response = admin.post("/workspace/templates/", GLIOMA | {"scope": "institution"})
    assert response.status_code == 302
    with schema_context(neuro.schema_name):
        template = OpinionTemplate.objects.get(name=GLIOMA["name"])
        assert AuditEvent.objects.filter(
            action="template.create", object_ref=f"template:{template.pk}"
        ).exists()
    assert template.owner is None
    for role in ("reviewer1", "reviewer2"):
        page = staff_client(role).get("/workspace/templates/").content.decode()
        assert GLIOMA["name"] in page
        assert "MRI brain: mass lesion" in page  # the demo institution's own (seed_demo)


def test_it_keeps_a_reviewers_personal_template_to_them(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    reviewer.post("/workspace/templates/", GLIOMA | {"name": "My spine template", "scope": "personal"})
    with schema_context(neuro.schema_name):
        template = OpinionTemplate.objects.get(name="My spine template")
    assert template.owner == user_in(neuro, "reviewer1@neuro.example.com")
    assert "My spine template" in reviewer.get("/workspace/templates/").content.decode()
    other = staff_client("reviewer2")
    assert "My spine template" not in other.get("/workspace/templates/").content.decode()
    # Someone else's personal template does not exist for them, nor for an admin.
    for role in ("reviewer2", "admin"):
        client = staff_client(role)
        assert client.get(f"/workspace/templates/{template.pk}").status_code == 404
        assert client.post(f"/workspace/templates/{template.pk}/delete").status_code == 404
    with schema_context(neuro.schema_name):
        assert OpinionTemplate.objects.filter(pk=template.pk).exists()


def test_it_refuses_a_reviewer_writing_the_institutions_templates(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    reviewer = staff_client("reviewer1")
    page = reviewer.post("/workspace/templates/", GLIOMA | {"scope": "institution"}, follow=True)
    assert escape(TEMPLATE_INSTITUTION_ONLY_ADMINS_MESSAGE) in page.content.decode()
    shared = _template(neuro, owner_email=None)
    assert reviewer.post(f"/workspace/templates/{shared.pk}", GLIOMA).status_code == 403
    assert reviewer.post(f"/workspace/templates/{shared.pk}/delete").status_code == 403
    with schema_context(neuro.schema_name):
        assert not OpinionTemplate.objects.filter(name=GLIOMA["name"]).exists()
        assert OpinionTemplate.objects.get(pk=shared.pk).name == "Shared"


def test_it_refuses_an_empty_template_and_stores_nothing(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    page = staff_client("reviewer1").post(
        "/workspace/templates/", {"name": "Nothing in it", "scope": "personal"}, follow=True
    )
    assert escape(TEMPLATE_EMPTY_MESSAGE) in page.content.decode()
    with schema_context(neuro.schema_name):
        assert not OpinionTemplate.objects.filter(name="Nothing in it").exists()


def test_it_lets_an_admin_edit_and_delete_the_institutions_template(
    neuro: Institution, staff_client: Callable[[str], Client]
) -> None:
    shared = _template(neuro, owner_email=None)
    admin = staff_client("admin")
    assert admin.get(f"/workspace/templates/{shared.pk}").status_code == 200
    admin.post(f"/workspace/templates/{shared.pk}", GLIOMA | {"name": "Renamed"})
    with schema_context(neuro.schema_name):
        assert OpinionTemplate.objects.get(pk=shared.pk).name == "Renamed"
    admin.post(f"/workspace/templates/{shared.pk}/delete")
    with schema_context(neuro.schema_name):
        assert not OpinionTemplate.objects.filter(pk=shared.pk).exists()
        assert AuditEvent.objects.filter(action="template.delete").exists()


def test_it_fills_the_empty_sections_and_keeps_what_the_reviewer_wrote(
    neuro: Institution, assigned_case: Case, staff_client: Callable[[str], Client]
) -> None:
    shared = _template(neuro, owner_email=None)
    reviewer = staff_client("reviewer1")
    page = reviewer.get(f"/workspace/cases/{assigned_case.public_id}/").content.decode()
    assert 'data-testid="template-choice"' in page and "Shared" in page
    reviewer.post(
        f"/workspace/cases/{assigned_case.public_id}/opinion/draft", {"findings": "My own findings."}
    )
    page = reviewer.post(
        f"/workspace/cases/{assigned_case.public_id}/opinion/template", {"template": shared.pk}, follow=True
    ).content.decode()
    assert "Your text was kept in: findings." in page
    with schema_context(neuro.schema_name):
        opinion = Opinion.objects.get(case=assigned_case)
    assert opinion.findings == "My own findings."
    assert opinion.impression == "Template impression."
    assert opinion.recommendation == "no_change"
    assert opinion.question_restated == assigned_case.question  # the patient's words, not the template's
    # Applied again: everything it fills is written now; nothing changes.
    page = reviewer.post(
        f"/workspace/cases/{assigned_case.public_id}/opinion/template", {"template": shared.pk}, follow=True
    ).content.decode()
    assert escape(TEMPLATE_NOTHING_TO_FILL_MESSAGE) in page


def test_it_refuses_templates_to_outsiders(
    neuro: Institution,
    assigned_case: Case,
    staff_client: Callable[[str], Client],
    cancer_client: Client,
) -> None:
    with schema_context(neuro.schema_name):
        before = OpinionTemplate.objects.count()
    mine = _template(neuro, owner_email="reviewer1@neuro.example.com", name="Mine")
    shared = _template(neuro, owner_email=None)
    apply_url = f"/workspace/cases/{assigned_case.public_id}/opinion/template"
    # Its owner may apply it on their case; another reviewer may not, even on their own case.
    assert staff_client("reviewer1").post(apply_url, {"template": mine.pk}).status_code == 302
    with schema_context(neuro.schema_name):
        Opinion.objects.filter(case=assigned_case).delete()
        CaseAssignment.objects.filter(case=assigned_case).update(
            reviewer=user_in(neuro, "reviewer2@neuro.example.com")
        )
    assert staff_client("reviewer2").post(apply_url, {"template": mine.pk}).status_code == 404
    # Not the case's reviewer, a patient, another institution, signed out.
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    staff_force_login(cancer_client, "admin@cancer.example.com")
    signed_out = Client(HTTP_HOST="neuro.localhost")
    for client in (
        staff_client("reviewer1"),
        staff_client("coordinator"),
        patient,
        cancer_client,
        signed_out,
    ):
        response = client.post(apply_url, {"template": shared.pk})
        assert response.status_code in (302, 403, 404)
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]
    # The template pages: staff who neither write opinions nor administer, patients, the other
    # institution (whose schema has no such template), signed out.
    for client, refused in (
        (staff_client("coordinator"), 403),
        (patient, 403),
        (cancer_client, 404),
    ):
        assert client.get(f"/workspace/templates/{shared.pk}").status_code == refused
        assert client.post(f"/workspace/templates/{shared.pk}/delete").status_code == refused
    assert staff_client("coordinator").get("/workspace/templates/").status_code == 403
    assert signed_out.get("/workspace/templates/")["Location"].startswith("/accounts/login/")
    with schema_context(neuro.schema_name):
        assert not Opinion.objects.filter(case=assigned_case).exists()
        assert OpinionTemplate.objects.count() == before + 2
