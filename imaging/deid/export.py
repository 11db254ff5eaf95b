"""A de-identified copy of a case's images as one zip, for teaching and research.

Every instance of the case's studies is read from storage, de-identified (imaging.deid.profile)
with one UID map for the whole export, and written to the zip under opaque names
(``STUDY1/SERIES2/IM0003.dcm``). Instances whose pixels may show the patient's name (burned-in
annotation) are left out and counted, reports are never included (their text is not
de-identified), and nothing of the original names, dates or UIDs reaches the zip's paths.
"""

from __future__ import annotations

import io
import secrets
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread

from imaging.deid.profile import DeidOptions, UidMap, burned_in_risk, dataset_deidentify
from imaging.instance_files import instance_file_read
from imaging.models import Instance
from storage.tenant import tenant_storage
from tenants.schema import current_schema_name

# The zip is built in a temporary file once it passes this size, so memory stays bounded.
SPOOL_BYTES = 32 * 1024 * 1024


@dataclass
class DeidExport:
    file: Any  # a SpooledTemporaryFile positioned at 0
    exported: int
    left_out_burned_in: int
    pseudonym: str


def case_export_deidentified(*, case: Any, options: DeidOptions) -> DeidExport:
    """Precondition: the caller checked the user may export this case (staff) and audits it."""
    storage = tenant_storage(current_schema_name())
    uids = UidMap()
    pseudonym = f"SR-DEID-{secrets.token_hex(4).upper()}"
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned open)
    exported = left_out = 0
    study_numbers: dict[int, int] = {}
    series_numbers: dict[int, int] = {}
    instances = (
        Instance.objects.filter(series__study__case=case)
        .select_related("series__study")
        .order_by("series__study_id", "series__series_number", "series_id", "instance_number", "id")
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for instance in instances.iterator(chunk_size=200):
            ds = dcmread(io.BytesIO(instance_file_read(instance, storage)))
            if burned_in_risk(ds):
                left_out += 1
                continue
            dataset_deidentify(ds, uids=uids, options=options, pseudonym=pseudonym)
            study = study_numbers.setdefault(instance.series.study_id, len(study_numbers) + 1)
            series = series_numbers.setdefault(instance.series_id, len(series_numbers) + 1)
            exported += 1
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            archive.writestr(f"STUDY{study}/SERIES{series}/IM{exported:05d}.dcm", buffer.getvalue())
        archive.writestr(
            "README.txt",
            "De-identified with the DICOM PS3.15 Basic Application Level Confidentiality Profile"
            f"{' + Retain Longitudinal Full Dates' if options.retain_longitudinal_dates else ''}"
            f"{' + Clean Descriptors' if options.clean_descriptors else ''}.\n"
            f"Images: {exported}. Left out because their pixels may show identifying text: {left_out}.\n"
            "Reports are not included. Check every image before you share this copy.\n",
        )
    out.seek(0)
    return DeidExport(out, exported, left_out, pseudonym)
