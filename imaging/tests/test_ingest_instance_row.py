"""An instance's row holds what was read from its file, column for column (the rows are written
by one plain INSERT from arrays, imaging.ingest.pipeline.index.instances_insert)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django_tenants.utils import tenant_context

from imaging.ingest.dicom import header_read
from imaging.ingest.pipeline import upload_ingest_run
from imaging.ingest.pipeline.index import INSTANCE_COLUMNS
from imaging.models import Instance, Upload
from imaging.tests.fixtures.ingest import case_make, sample, upload_make, with_preamble, zip_bytes
from intake.models import Case
from tenants.models import Institution

NAMES = ["CT_small.dcm", "MR_small.dcm", "emri_small_RLE.dcm", "JPEG2000.dcm", "color3d_jpeg_baseline.dcm"]


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def test_it_writes_every_column_an_instance_has() -> None:
    # A column added to Instance must be written at ingest too (or given a database default).
    columns = {field.column for field in Instance._meta.concrete_fields} - {"id", "created"}
    assert columns == {name for name, _ in INSTANCE_COLUMNS}


def test_it_stores_what_each_file_says(case: Case) -> None:
    files = {f"DISC/{name}": sample(name) for name in NAMES}
    files["DISC/polyglot.dcm"] = with_preamble(sample("CT_small.dcm"), b"MZ" + b"\x90" * 126)
    files.pop("DISC/CT_small.dcm")  # the polyglot is the same image, once
    upload = upload_make(case, zip_bytes(files.items()), path="disc.zip")
    upload_ingest_run(upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.DONE
    rows = {row.sop_instance_uid: row for row in Instance.objects.filter(series__study__case=case)}
    assert len(rows) == len(files)
    for data in files.values():
        header = header_read(io.BytesIO(data), len(data))
        row = rows[header.sop_instance_uid]
        index = header.pixel_index
        assert index is not None
        assert (
            row.sop_class_uid,
            row.instance_number,
            row.transfer_syntax_uid,
            row.rows,
            row.columns,
            row.number_of_frames,
            row.bits_allocated,
            row.slice_location,
            row.size,
            row.preamble_cleared,
            row.header_length,
            row.pixel_data_offset,
            row.frames_encapsulated,
            bytes(row.frame_spans or b""),
            row.upload_id,
            row.created is not None,
        ) == (
            header.sop_class_uid,
            header.instance_number,
            header.transfer_syntax_uid,
            header.rows,
            header.columns,
            header.number_of_frames,
            header.bits_allocated,
            header.slice_location,
            len(data),
            header.preamble_suspicious,
            index.header_length,
            index.pixel_data_offset,
            index.frames_encapsulated,
            index.frame_spans,
            upload.pk,
            True,
        )
        assert row.series.series_instance_uid == header.series_instance_uid
