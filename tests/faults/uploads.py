"""A folder drop waiting to be ingested (one upload per file, as the browser used to send a CD's
folder, or tars of many files, as it sends them now), committed for the fault tests' workers,
and the checks that every file of it was ingested exactly once."""

from __future__ import annotations

import io

import pydicom
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context

from imaging.models import FileProblem, Instance, Series, Upload
from imaging.tests.fixtures.ingest import case_make, dicom_renamed, stored_images, tar_bytes, upload_make
from intake.models import Case
from storage.tenant import tenant_storage
from tests.live import committed


def folder_drop_make(files: int, *, per_upload: int = 1, schema: str = "neuro") -> tuple[Case, list[int]]:
    """A case with ``files`` images received, one study and series: one upload per file, or
    uncompressed tars of ``per_upload`` files (as frontend/src/intake/tarbatch.js packs them)."""

    def create() -> tuple[Case, list[int]]:
        with schema_context(schema):
            case = case_make(schema)
            case.consented_at = timezone.now()  # the patient may add files through the server too
            case.save(update_fields=["consented_at"])
            template = pydicom.dcmread(io.BytesIO(dicom_renamed("CT_small.dcm")))
            ids = []
            for first in range(1, files + 1, per_upload):
                images = [
                    (
                        f"DICOM/IM{number:05d}",
                        dicom_renamed(
                            "CT_small.dcm",
                            StudyInstanceUID=template.StudyInstanceUID,
                            SeriesInstanceUID=template.SeriesInstanceUID,
                            InstanceNumber=number,
                        ),
                    )
                    for number in range(first, min(first + per_upload, files + 1))
                ]
                if per_upload == 1:
                    path, data = images[0]
                else:
                    path, data = f"batch-{first // per_upload + 1:04d}.tar", tar_bytes(images)
                ids.append(upload_make(case, data, path=path).pk)
            return case, ids

    return committed(create)


def folder_drop_remove(case: Case, *, schema: str = "neuro") -> None:
    def remove() -> None:
        with schema_context(schema):
            tenant_storage().delete_prefix(f"uploads/{case.public_id}")
            tenant_storage().delete_prefix(f"dicom/{case.public_id}")
            Case.objects.filter(pk=case.pk).delete()

    committed(remove)


def ingested_once(case: Case, upload_ids: list[int], *, per_upload: int = 1) -> None:
    """Every upload ingested, each file exactly once, no file blamed for our fault, every
    instance's bytes stored. Precondition: in the case's schema."""
    images = len(upload_ids) * per_upload
    uploads = Upload.objects.filter(case=case)
    assert set(uploads.values_list("status", flat=True)) == {Upload.Status.DONE}
    instances = Instance.objects.filter(series__study__case=case)
    assert instances.count() == images
    assert instances.values("sop_instance_uid").distinct().count() == images
    counts = dict(instances.values_list("upload_id").annotate(n=Count("pk")))
    assert counts == dict.fromkeys(upload_ids, per_upload)  # each file once, from its own upload
    assert Series.objects.get(study__case=case).instance_count == images
    assert not FileProblem.objects.filter(case=case).exists()  # no file blamed for our fault
    assert set(uploads.values_list("system_problem", flat=True)) == {""}
    if per_upload == 1:
        stored = set(tenant_storage().list_keys(f"dicom/{case.public_id}"))
        assert set(instances.values_list("storage_key", flat=True)) <= stored
    else:  # images kept where they lie in their batch: each reads back as a DICOM file
        assert all(data[128:132] == b"DICM" for data in stored_images(case).values())
