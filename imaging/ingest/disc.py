"""What a patient's disc holds besides images: its index (DICOMDIR) and its PDF reports.

**The index.** A CD's DICOMDIR lists every image on the disc (each record's ReferencedFileID and
ReferencedSOPInstanceUIDInFile). When a DICOMDIR arrives as a file of its own (a folder drop),
its listing is kept on the upload (``metadata["discIndex"]``) and :func:`case_disc_missing`
names the listed images that did not arrive, by comparing SOP Instance UIDs with the case's
instances, so the order in which the disc's files arrive does not matter. pydicom's ``FileSet``
is not used for this: it needs the referenced files on disk beside the DICOMDIR and drops the
records whose files are absent, which are exactly the ones we must name.

**Reports.** A PDF found in an imaging upload (on a disc in a zip, or chosen among the images)
becomes a report of the case, checked and matched like one the patient uploaded on the reports
step, with its kind not chosen yet (the patient is asked). It remembers the upload and the path
it came from, so ingesting the upload again does not make it twice.
"""

from __future__ import annotations

import posixpath
import uuid
from typing import Any, BinaryIO

from imaging.cases import CaseRow
from imaging.ingest.dicom import FileRejected
from imaging.ingest.reports import report_file_check, report_match
from imaging.models import FileProblem, Instance, Report, Upload
from storage.tenant import tenant_storage

MISSING_SHOWN = 20


def disc_index_keep(*, upload: Upload, listed: list[list[str]], path: str) -> None:
    """Keep the listing of the DICOMDIR that is ``upload`` (a file of a folder drop): [SOP
    Instance UID, path relative to the DICOMDIR's folder] of every image it lists, as
    :func:`imaging.ingest.dicom.header_read` read them."""
    metadata = dict(upload.metadata)
    metadata["discIndex"] = {"path": path, "listed": listed}
    Upload.objects.filter(pk=upload.pk).update(metadata=metadata)
    upload.metadata = metadata


def case_disc_missing(*, case: CaseRow) -> list[dict[str, Any]]:
    """For each disc index received as a file of its own: the images it lists that the case
    does not hold (as dicts for JSON: index, count, files)."""
    found: list[dict[str, Any]] = []
    indexes = Upload.objects.filter(case=case, kind=Upload.Kind.IMAGING, metadata__has_key="discIndex")
    for upload in indexes.exclude(status=Upload.Status.EXPIRED).order_by("created"):
        index = upload.metadata.get("discIndex") or {}
        listed = [(str(uid), str(path)) for uid, path in index.get("listed", [])]
        if not listed:
            continue
        present = set(
            Instance.objects.filter(
                series__study__case=case, sop_instance_uid__in=[uid for uid, _ in listed]
            ).values_list("sop_instance_uid", flat=True)
        )
        missing = [path for uid, path in listed if uid not in present]
        if missing:
            folder = posixpath.dirname(str(index.get("path", "")))
            found.append(
                {
                    "index": str(index.get("path", "DICOMDIR")),
                    "count": len(missing),
                    "files": [posixpath.join(folder, path) for path in missing[:MISSING_SHOWN]],
                }
            )
    return found


def disc_report_ingest(*, case: CaseRow, upload: Upload, fp: BinaryIO, size: int, path: str) -> Report | None:
    """Keep the PDF at ``path`` of imaging ``upload`` as a report (kind not chosen yet), or
    record why it was refused. Idempotent per (upload, path)."""
    existing = Report.objects.filter(source_upload=upload, source_path=path[:1000]).first()
    if existing is not None:
        return existing
    try:
        checked = report_file_check(fp, size)
    except FileRejected as rejected:
        FileProblem.objects.create(
            case=case,
            upload=upload,
            path=path[:1000],
            code=FileProblem.Code.REPORT_REFUSED,
            message=rejected.message,
        )
        return None
    key = f"reports/{case.public_id}/{uuid.uuid4().hex}"
    fp.seek(0)
    stored = tenant_storage().save(key, fp, size)
    report = Report.objects.create(
        case=case,
        source_upload=upload,
        source_path=path[:1000],
        kind=Report.Kind.UNKNOWN,
        original_name=posixpath.basename(path)[:255],
        content_type=checked.content_type,
        storage_key=key,
        size=stored,
        extracted_text=checked.text,
    )
    return report_match(report=report)
