"""What the wizard (before submission) and the staff workspace (after) show about a case's files.

Precondition for every function: the caller got ``case`` through the case access helper, so
the user may see it. Nothing here checks permissions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Q

from imaging.cases import CaseRow
from imaging.models import FileProblem, Report, Series, Study, Upload


@dataclass(frozen=True)
class SeriesSummary:
    id: int
    number: int | None
    modality: str
    description: str
    body_part: str
    instance_count: int
    preview_key: str  # serve through a permission-checked view; "" while not drawn yet


@dataclass(frozen=True)
class StudySummary:
    id: int
    study_date: date | None
    modalities: list[str]
    description: str
    body_part: str
    accession_number: str
    series_count: int
    instance_count: int
    series: list[SeriesSummary] = field(default_factory=list)
    report_ids: list[int] = field(default_factory=list)
    # Whether the files name the declared patient (imaging.identity), and whether (and why) the
    # study was left out of the case (imaging.exclusion); "" when it is included.
    identity_status: str = Study.Identity.UNKNOWN
    identity_reason: str = ""
    excluded_reason: str = ""


def case_imaging_summary(*, case: CaseRow, with_excluded: bool = False) -> list[StudySummary]:
    """The case's studies (oldest first) with their series and counts; three queries. Studies
    left out of the case (by the patient or staff) only ``with_excluded``."""
    rows = Study.objects.filter(case=case) if with_excluded else Study.objects.included().filter(case=case)
    studies = list(rows.order_by("study_date", "id"))
    series_by_study: dict[int, list[SeriesSummary]] = {study.pk: [] for study in studies}
    for series in Series.objects.filter(study__in=[study.pk for study in studies]).order_by(
        "study_id", "series_number", "id"
    ):
        series_by_study[series.study_id].append(
            SeriesSummary(
                id=series.pk,
                number=series.series_number,
                modality=series.modality,
                description=series.description,
                body_part=series.body_part,
                instance_count=series.instance_count,
                preview_key=series.preview_key,
            )
        )
    reports_by_study: dict[int, list[int]] = {}
    for report_id, study_id in Report.objects.filter(case=case, study__isnull=False).values_list(
        "pk", "study_id"
    ):
        reports_by_study.setdefault(study_id, []).append(report_id)
    return [
        StudySummary(
            id=study.pk,
            study_date=study.study_date,
            modalities=[code for code in study.modalities.split(",") if code],
            description=study.description,
            body_part=study.body_part,
            accession_number=study.accession_number,
            series_count=study.series_count,
            instance_count=study.instance_count,
            series=series_by_study[study.pk],
            report_ids=reports_by_study.get(study.pk, []),
            identity_status=study.identity_status,
            identity_reason=study.identity_reason,
            excluded_reason=study.excluded_reason if study.excluded_at else "",
        )
        for study in studies
    ]


# Most important first: what the patient must act on, then what we only tell them.
PROBLEM_ORDER = [
    FileProblem.Code.INCONSISTENT_PATIENT,
    FileProblem.Code.MISSING_FILES,
    FileProblem.Code.REPORT_REFUSED,
    FileProblem.Code.TRUNCATED,
    FileProblem.Code.UNREADABLE,
    FileProblem.Code.ARCHIVE_LIMIT,
    FileProblem.Code.UNSAFE_ARCHIVE,
    FileProblem.Code.NOT_DICOM,
    FileProblem.Code.EMPTY,
    FileProblem.Code.PREAMBLE_CLEARED,
    FileProblem.Code.DUPLICATE,
    FileProblem.Code.SKIPPED_PROGRAM,
]
# Shown folded (a count, no list of files): nothing is wrong, nothing to do.
INFORMATIONAL = {FileProblem.Code.DUPLICATE, FileProblem.Code.SKIPPED_PROGRAM}
PATHS_SHOWN = 20


@dataclass(frozen=True)
class ProblemGroup:
    code: str
    title: str  # e.g. "Not a medical image file"
    messages: list[str]  # the distinct plain-words explanations in this group
    count: int
    paths: list[str]  # up to PATHS_SHOWN file paths (patient data: show only to allowed users)
    informational: bool
    # With ``with_uploads``: (path, upload the file came in) for each of ``paths``.
    files: list[tuple[str, Upload | None]] = field(default_factory=list)


def case_problems(*, case: CaseRow, with_uploads: bool = False) -> list[ProblemGroup]:
    """The case's file problems grouped by kind, most important first; ``with_uploads`` also
    gives the upload each listed file came in (to name the zip it was in)."""
    messages_by_code: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    paths_by_code: dict[str, list[str]] = {}
    files_by_code: dict[str, list[tuple[str, int | None]]] = {}
    rows = (
        FileProblem.objects.filter(case=case)
        .order_by("id")
        .values_list("code", "message", "path", "upload_id")
    )
    for code, message, path, upload_id in rows.iterator():
        group_messages = messages_by_code.setdefault(code, [])
        if message not in group_messages:
            group_messages.append(message)
        counts[code] = counts.get(code, 0) + 1
        group_paths = paths_by_code.setdefault(code, [])
        group_files = files_by_code.setdefault(code, [])
        if (path or upload_id) and len(group_files) < PATHS_SHOWN:
            group_files.append((path, upload_id))
        if path and len(group_paths) < PATHS_SHOWN:
            group_paths.append(path)
    uploads: dict[int, Upload] = {}
    if with_uploads:
        wanted = {upload_id for files in files_by_code.values() for _, upload_id in files if upload_id}
        uploads = {upload.pk: upload for upload in Upload.objects.filter(pk__in=wanted)}
    order = {str(code): index for index, code in enumerate(PROBLEM_ORDER)}
    return [
        ProblemGroup(
            code=code,
            title=str(FileProblem.Code(code).label) if code in FileProblem.Code.values else code,
            messages=messages_by_code[code],
            count=counts[code],
            paths=paths_by_code[code],
            informational=code in INFORMATIONAL,
            files=[
                (path, uploads.get(upload_id) if upload_id else None)
                for path, upload_id in files_by_code[code]
            ]
            if with_uploads
            else [],
        )
        for code in sorted(counts, key=lambda code: order.get(code, len(order)))
    ]


@dataclass(frozen=True)
class IngestProgress:
    waiting: int  # complete, not yet processed
    processing: int
    done: int
    failed: int

    @property
    def finished(self) -> bool:
        return self.waiting == 0 and self.processing == 0


def case_ingest_progress(*, case: CaseRow) -> IngestProgress:
    """How far the processing of the case's complete uploads has got (for a progress line)."""
    counts = dict(
        Upload.objects.filter(case=case)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return IngestProgress(
        waiting=counts.get(Upload.Status.RECEIVED, 0),
        processing=counts.get(Upload.Status.INGESTING, 0),
        done=counts.get(Upload.Status.DONE, 0),
        failed=counts.get(Upload.Status.FAILED, 0),
    )


_SETTLED = (Upload.Status.DONE, Upload.Status.FAILED, Upload.Status.EXPIRED)


@dataclass
class UploadTroubles:
    failed: list[Upload]  # could not be processed (staff may download the bytes sent)
    # Problems of ours (storage failing) holding up the case's files, one line each with how many
    # files they hold up: for staff only. The patient reads that the files are still being checked.
    system_problems: list[str]


def case_upload_troubles(*, case: CaseRow) -> UploadTroubles:
    """The case's failed uploads (oldest first) and system problems, in one query: the staff case
    page shows both."""
    rows = list(
        Upload.objects.filter(case=case)
        .filter(Q(status=Upload.Status.FAILED) | (~Q(system_problem="") & ~Q(status__in=_SETTLED)))
        .only("public_id", "status", "system_problem", "error_message", "length", "created")
        .order_by("created", "id")
    )
    waiting = Counter(row.system_problem for row in rows if row.status != Upload.Status.FAILED)
    return UploadTroubles(
        failed=[row for row in rows if row.status == Upload.Status.FAILED],
        system_problems=[
            f"{problem} ({n} file{'s' if n != 1 else ''} waiting)" for problem, n in sorted(waiting.items())
        ],
    )
