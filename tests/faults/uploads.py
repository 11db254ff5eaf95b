"""A folder drop waiting to be ingested (one upload per file, as the browser sends a CD's
folder), committed for the fault tests' workers, and the checks that every file of it was
ingested exactly once."""

from __future__ import annotations

import io

import pydicom
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context

from imaging.models import FileProblem, Instance, Series, Upload
from imaging.tests.fixtures.ingest import case_make, dicom_renamed, upload_make
from intake.models import Case
from storage.tenant import tenant_storage
from tests.live import committed


def folder_drop_make(files: int, *, schema: str = "neuro") -> tuple[Case, list[int]]:
    """A case with ``files`` uploads received, one study and series of ``files`` images."""

    def create() -> tuple[Case, list[int]]:
        with schema_context(schema):
            case = case_make(schema)
            case.consented_at = timezone.now()  # the patient may add files through the server too
            case.save(update_fields=["consented_at"])
            template = pydicom.dcmread(io.BytesIO(dicom_renamed("CT_small.dcm")))
            ids = []
            for number in range(1, files + 1):
                data = dicom_renamed(
                    "CT_small.dcm",
                    StudyInstanceUID=template.StudyInstanceUID,
                    SeriesInstanceUID=template.SeriesInstanceUID,
                    InstanceNumber=number,
                )
                ids.append(upload_make(case, data, path=f"DICOM/IM{number:05d}").pk)
            return case, ids

    return committed(create)


def folder_drop_remove(case: Case, *, schema: str = "neuro") -> None:
    def remove() -> None:
        with schema_context(schema):
            tenant_storage().delete_prefix(f"uploads/{case.public_id}")
            tenant_storage().delete_prefix(f"dicom/{case.public_id}")
            Case.objects.filter(pk=case.pk).delete()

    committed(remove)


def ingested_once(case: Case, upload_ids: list[int]) -> None:
    """Every upload ingested, each file exactly once, no file blamed for our fault, every
    instance's bytes stored. Precondition: in the case's schema."""
    uploads = Upload.objects.filter(case=case)
    assert set(uploads.values_list("status", flat=True)) == {Upload.Status.DONE}
    instances = Instance.objects.filter(series__study__case=case)
    assert instances.count() == len(upload_ids)
    assert instances.values("sop_instance_uid").distinct().count() == len(upload_ids)
    per_upload = dict(instances.values_list("upload_id").annotate(n=Count("pk")))
    assert per_upload == dict.fromkeys(upload_ids, 1)  # each file once, from its own upload
    assert Series.objects.get(study__case=case).instance_count == len(upload_ids)
    assert not FileProblem.objects.filter(case=case).exists()  # no file blamed for our fault
    assert set(uploads.values_list("system_problem", flat=True)) == {""}
    stored = set(tenant_storage().list_keys(f"dicom/{case.public_id}"))
    assert set(instances.values_list("storage_key", flat=True)) <= stored
