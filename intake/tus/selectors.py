"""Reads for the wizard: a case's uploads and how far along each is."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from imaging.models import Upload
from intake.models import Case


@dataclass(frozen=True)
class UploadProgress:
    public_id: uuid.UUID
    kind: str
    filename: str  # patient data: show it to the patient, never log it
    relative_path: str
    status: str
    status_label: str
    offset: int
    length: int
    percent: int
    error_message: str


def case_uploads(*, case: Case, include_expired: bool = False) -> list[UploadProgress]:
    """Every upload of ``case`` (oldest first) with its progress; expired ones only if asked."""
    uploads = Upload.objects.filter(case=case).order_by("created", "id")
    if not include_expired:
        uploads = uploads.exclude(status=Upload.Status.EXPIRED)
    return [
        UploadProgress(
            public_id=upload.public_id,
            kind=upload.kind,
            filename=str(upload.metadata.get("filename", "")),
            relative_path=upload.relative_path,
            status=upload.status,
            status_label=upload.get_status_display(),
            offset=upload.offset,
            length=upload.length or 0,
            percent=100 if not upload.length else min(100, upload.offset * 100 // upload.length),
            error_message=upload.error_message,
        )
        for upload in uploads
    ]
