"""A batch being ingested: the files waiting to be written, the problems found, and what became
of each upload (the state the unpack and index steps share)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

from imaging.cases import CaseRow
from imaging.ingest.pipeline.store import BackgroundSaver, PendingFile
from imaging.ingest.unpack import ArchiveLimits
from imaging.instance_files import instance_in_batch
from imaging.models import FileProblem, Series, Study, Upload
from storage.tenant import TenantStorage

logger = logging.getLogger(__name__)

# Instances written to the database in one transaction.
BATCH_SIZE = 250

# Problems that do not make an upload "failed" when nothing else was kept (a DICOMDIR alone, a
# viewer's help file, an image sent twice), nor make us keep its raw bytes for staff to look at.
BENIGN_PROBLEMS = {
    FileProblem.Code.SKIPPED_PROGRAM,
    FileProblem.Code.DUPLICATE,
    FileProblem.Code.PREAMBLE_CLEARED,
}


@dataclass
class UploadTally:
    """What became of one upload's files within a run."""

    accepted: int = 0
    serious_problems: int = 0
    # Every file of the upload was read and every instance of it committed (or refused).
    settled: bool = False
    # Its bytes were moved to their instance key: no raw bytes are left to delete.
    moved: bool = False
    # Images of it were kept where they lie in its bytes (imaging.instance_files): they stay.
    kept_in_batch: bool = False

    @property
    def failed(self) -> bool:
        return self.accepted == 0 and self.serious_problems > 0


@dataclass
class IngestOutcome:
    accepted: int = 0  # instances stored (imaging) or 1 for a report kept
    problems: int = 0
    failed: bool = False  # every upload of the run failed
    series_ids: set[int] = field(default_factory=set)
    new_studies: int = 0
    uploads: dict[int, UploadTally] = field(default_factory=dict)

    @property
    def failed_upload_ids(self) -> set[int]:
        return {upload_id for upload_id, tally in self.uploads.items() if tally.failed}


class BatchLost(Exception):
    """Writing a batch to the database failed: not a file's fault, so never recorded as one."""


def failure_log(exc: BaseException, upload_ids: Iterable[int]) -> None:
    # The traceback's frames only: exception messages may quote what the file holds.
    logger.error(
        "ingest of uploads %s failed: %s\n%s",
        ",".join(str(upload_id) for upload_id in upload_ids),
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )


class RunState:
    """The state of ingesting a batch of imaging uploads (files of a folder, or a zip of a CD).

    ``self.upload`` is the upload being read; what is found in it (instances waiting to be
    written, problems) carries that upload, so a batch of many uploads keeps each file's
    problems and instances on the upload it came from.
    """

    def __init__(
        self, case: CaseRow, storage: TenantStorage, saver: BackgroundSaver, limits: ArchiveLimits
    ) -> None:
        self.case = case
        self.limits = limits
        self.storage = storage
        self.saver = saver
        self.upload: Upload | None = None
        # While an upload is read, the key whose bytes are being read as it (its own, or where
        # a retried run finds them): a single-file upload's image is moved from there, an image
        # kept where it lies in a batch points there.
        self.upload_bytes_key: str | None = None
        self.batch: list[PendingFile] = []
        self.problems: list[FileProblem] = []
        # Uploads whose every file was read; settled by the next flush that commits.
        self.read: list[int] = []
        self.seen: set[str] = set()
        self.studies: dict[str, Study] = {}
        self.series: dict[tuple[str, str], Series] = {}
        self.outcome = IngestOutcome()
        self.mismatch_seen = False
        self.patient_filled = False
        self.referenced: list[str] = []

    def tally(self, upload: Upload) -> UploadTally:
        return self.outcome.uploads.setdefault(upload.pk, UploadTally())

    # -- problems ------------------------------------------------------------------------------

    def problem(self, path: str, code: str, message: str, *, upload: Upload | None = None) -> None:
        upload = upload or self.upload
        assert upload is not None, "a problem belongs to an upload"
        self.problems.append(
            FileProblem(case=self.case, upload=upload, path=path[:1000], code=code, message=message[:300])
        )
        if code not in BENIGN_PROBLEMS:
            self.tally(upload).serious_problems += 1
        if len(self.problems) >= BATCH_SIZE:
            self.problems_save()

    def problems_save(self) -> None:
        if self.problems:
            FileProblem.objects.bulk_create(self.problems)
            self.outcome.problems += len(self.problems)
            self.problems = []

    # -- one upload ------------------------------------------------------------------------------

    def batch_full(self) -> bool:
        """Whether the instances waiting to be written make a batch (:data:`BATCH_SIZE`)."""
        return len(self.batch) >= BATCH_SIZE

    def discard(self, pending: PendingFile) -> None:
        """Undo storing a file that did not become an instance: delete its copy, or put bytes
        moved from an upload back under the upload's key (a failed upload keeps its bytes)."""
        if instance_in_batch(pending):
            return  # bytes inside the upload's own, which stay with the upload
        if pending.moved_from is None:
            self.storage.delete(pending.storage_key)
            return
        self.tally(pending.upload).moved = False
        if self.storage.exists(pending.storage_key):
            self.storage.move(pending.storage_key, pending.moved_from)
