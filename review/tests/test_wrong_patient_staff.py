"""Another patient's images in a case: staff see whose they are, the queue flags the case, and
staff can exclude the study (kept, audited, hidden by default) (issue 15, item 5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from imaging.models import Study
from intake.models import Case
from tenants.models import Institution
from tests.staff import staff_force_login


def _case_with_a_stranger(make_case: Callable[..., Case], neuro: Institution) -> tuple[Case, Study]:
    case = make_case()  # Jane Testpatient's "MRI brain"
    with schema_context(neuro.schema_name):
        stranger = Study.objects.create(
            case=case,
            study_instance_uid=f"9.9.9.{case.pk}",
            description="CT chest",
            modalities="CT",
            patient_name_in_files="DOE^JOHN",
            patient_birth_date_in_files="19580101",
            identity_status=Study.Identity.MISMATCH,
            identity_reason="The name and birth date differ.",
        )
    return case, stranger


def test_it_names_whose_images_they_are_flags_the_queue_and_lets_staff_exclude_the_study(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case, stranger = _case_with_a_stranger(make_case, neuro)
    coordinator = staff_client("coordinator")
    page = coordinator.get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert 'data-testid="identity-banner"' in page
    assert "DOE^JOHN" in page and "this case is for <strong>Jane Testpatient</strong>" in page
    queue = coordinator.get("/workspace/").content.decode()
    assert 'data-testid="identity-flag"' in queue

    coordinator.post(f"/workspace/cases/{case.public_id}/studies/{stranger.pk}/exclude")

    page = coordinator.get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert 'data-testid="identity-banner"' not in page
    assert "Excluded studies (1)" in page and "Excluded by staff" in page
    assert f"9.9.9.{case.pk}" not in page  # not in the viewer's study list
    assert 'data-testid="identity-flag"' not in coordinator.get("/workspace/").content.decode()
    with schema_context(neuro.schema_name):
        assert Study.objects.filter(pk=stranger.pk, excluded_at__isnull=False).exists()  # kept
        assert AuditEvent.objects.filter(action="study.exclude", object_ref=f"study:{stranger.pk}").exists()

    coordinator.post(f"/workspace/cases/{case.public_id}/studies/{stranger.pk}/include")
    page = coordinator.get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert 'data-testid="identity-banner"' in page


@pytest.mark.parametrize("action", ["exclude", "include"])
def test_it_refuses_excluding_studies_to_outsiders(
    action: str,
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    neuro_client: Client,
    cancer_client: Client,
) -> None:
    case, stranger = _case_with_a_stranger(make_case, neuro)
    path = f"/workspace/cases/{case.public_id}/studies/{stranger.pk}/{action}"
    assert neuro_client.post(path).status_code == 302  # signed out
    assert staff_client("reviewer2").post(path).status_code == 404  # not their case
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    assert patient.post(path).status_code == 403  # the patient's own case, but not staff
    staff_force_login(cancer_client, "coordinator@cancer.example.com")
    assert cancer_client.post(path).status_code == 404  # another institution's staff
    other_case = make_case()
    assert (
        staff_client("coordinator")
        .post(f"/workspace/cases/{other_case.public_id}/studies/{stranger.pk}/{action}")
        .status_code
        == 404
    )  # a study of another case
    with schema_context(neuro.schema_name):
        assert Study.objects.get(pk=stranger.pk).excluded_at is None


def test_it_lets_staff_download_what_a_failed_upload_held_and_audits_it(
    neuro: Institution,
    make_case: Callable[..., Case],
    staff_client: Callable[[str], Client],
    neuro_client: Client,
) -> None:
    import io
    import uuid

    from imaging.models import Upload
    from storage.tenant import tenant_storage
    from tests.cases import user_in

    case = make_case()
    sent = b"PK\x03\x04 not really a zip"
    with schema_context(neuro.schema_name):
        key = f"uploads/{uuid.uuid4().hex}"
        tenant_storage().save(key, io.BytesIO(sent), len(sent))
        failed = Upload.objects.create(
            case=case,
            owner=user_in(neuro, "patient@neuro.example.com"),
            status=Upload.Status.FAILED,
            storage_key=key,
            length=len(sent),
            error_message="This zip file is damaged.",
        )
        done = Upload.objects.create(
            case=case, owner=case.owner, status=Upload.Status.DONE, storage_key=key, length=len(sent)
        )
    coordinator = staff_client("coordinator")
    page = coordinator.get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert "This zip file is damaged." in page and 'data-testid="upload-original"' in page
    path = f"/workspace/cases/{case.public_id}/uploads/{failed.public_id}/original"
    response = coordinator.get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == sent  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    with schema_context(neuro.schema_name):
        assert AuditEvent.objects.filter(action="upload.original", object_ref=str(failed.public_id)).exists()
    # Only failed uploads, only staff who may see the case.
    assert (
        coordinator.get(f"/workspace/cases/{case.public_id}/uploads/{done.public_id}/original").status_code
        == 404
    )
    assert neuro_client.get(path).status_code == 302
    assert staff_client("reviewer2").get(path).status_code == 404
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    assert patient.get(path).status_code == 403
