"""What the server made of a case's files so far, as the patient sees it: files received and
still being checked, studies (with who the files name, and whether each is to be sent),
reports (received, refused, unfinished), and problems, each naming the file it concerns.

Served as JSON to the images and reports steps (polled while files are processed) and shown on
the summary. Everything here is the patient's own data (file names, who the images name):
shown only to the case's owner, never logged, never in URLs.
"""

from __future__ import annotations

import datetime
import posixpath
from typing import Any

from django.db.models import IntegerField, Q, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from imaging.identity import study_identity_hint
from imaging.ingest.disc import case_disc_missing
from imaging.ingest.selectors import case_problems
from imaging.models import FileProblem, Report, Study, Upload
from intake.models import Case

# An upload that has not moved for this long while still being sent is unfinished (the tab was
# closed, the connection dropped), not "being checked": the patient is asked to send it again.
UNFINISHED_AFTER = datetime.timedelta(minutes=10)


def identity_warning(study: Study) -> str:
    """The calm sentence shown beside a study whose files name someone else ("" if they don't)."""
    if study.identity_status != Study.Identity.MISMATCH:
        return ""
    who = study_identity_hint(study)
    if who:
        return _(
            "These images seem to be of %(who)s, not of the patient you named. "
            "If they are not the patient's, remove them: they will not be sent."
        ) % {"who": who}
    return _(
        "The details written in these images do not match the patient you named. "
        "If they are not the patient's, remove them: they will not be sent."
    )


def _upload_name(upload: Upload | None) -> str:
    """What the patient called the file or zip (a browser-made batch of a folder has no name)."""
    if upload is None or upload.metadata.get("batchFiles"):
        return ""
    return posixpath.basename(str(upload.metadata.get("filename") or upload.relative_path or ""))


def _problem_file(path: str, upload: Upload | None) -> str:
    """The file a problem concerns, named so the patient can find it: "cd.zip › DICOM/IM5"."""
    container = _upload_name(upload)
    if container and path and path != container and not path.endswith("/" + container):
        return f"{container} › {path}"
    return path or container


def _reports(case: Case, uploads: Any, now: datetime.datetime) -> list[dict[str, Any]]:
    kind_labels = {value: str(label) for value, label in Report.Kind.choices}
    reports_by_upload = {report.upload_id: report for report in Report.objects.filter(case=case)}
    refusals = {
        problem.upload_id: _(problem.message)
        for problem in FileProblem.objects.filter(case=case, code=FileProblem.Code.REPORT_REFUSED)
    }
    listed: list[dict[str, Any]] = []
    for upload in uploads.filter(kind=Upload.Kind.REPORT).order_by("created"):
        report = reports_by_upload.get(upload.pk)
        name = report.original_name if report else _upload_name(upload) or str(upload.relative_path)
        if report is not None:
            state, message = "received", ""
        elif upload.status == Upload.Status.FAILED or upload.pk in refusals:
            state, message = "refused", refusals.get(upload.pk, "")
        elif upload.status == Upload.Status.RECEIVING and now - upload.updated > UNFINISHED_AFTER:
            state, message = "unfinished", _("This file did not finish sending. Choose it again to continue.")
        else:
            state, message = "checking", ""
        kind = report.kind if report else str(upload.metadata.get("reportKind") or Report.Kind.UNKNOWN)
        listed.append(_report_row(report, name, kind, kind_labels, state, message, from_disc=False))
    # Reports found inside a zip of a disc (no upload of their own).
    for report in Report.objects.filter(case=case, upload__isnull=True).order_by("created"):
        listed.append(
            _report_row(
                report, report.original_name, report.kind, kind_labels, "received", "", from_disc=True
            )
        )
    return listed


def _report_row(
    report: Report | None,
    name: str,
    kind: str,
    kind_labels: dict[str, str],
    state: str,
    message: str,
    *,
    from_disc: bool,
) -> dict[str, Any]:
    return {
        "id": str(report.public_id) if report else "",
        "name": name,
        "kind": str(kind_labels.get(kind, kind_labels[Report.Kind.UNKNOWN])),
        "kind_value": kind if kind in kind_labels else Report.Kind.UNKNOWN,
        "kind_asked": kind == Report.Kind.UNKNOWN,
        "state": state,
        "message": message,
        "from_disc": from_disc,
        "complete": state != "checking",
    }


def case_upload_overview(*, case: Case) -> dict[str, Any]:
    """The case's files as the patient sees them (see the module's docstring)."""
    now = timezone.now()
    uploads = case.uploads.exclude(status=Upload.Status.EXPIRED)
    # Files, not uploads: a batch the browser packed counts the files it holds.
    files = Coalesce(Cast(KeyTextTransform("batchFiles", "metadata"), IntegerField()), Value(1))
    imaging = uploads.filter(kind=Upload.Kind.IMAGING)
    stalled = Q(status=Upload.Status.RECEIVING, updated__lt=now - UNFINISHED_AFTER)
    by_status = dict(imaging.exclude(stalled).values_list("status").annotate(n=Sum(files)).order_by())
    unfinished = imaging.filter(stalled).aggregate(n=Sum(files))["n"] or 0
    processing = sum(
        by_status.get(status, 0)
        for status in (Upload.Status.RECEIVING, Upload.Status.RECEIVED, Upload.Status.INGESTING)
    )
    studies = list(Study.objects.filter(case=case).order_by("study_date", "id"))
    included = [study for study in studies if study.excluded_at is None]
    problems = [
        {
            "title": group.title,
            # Stored in English (the ingest's constants, imaging.ingest.messages); shown in the
            # page's language when the catalogue has them.
            "messages": [_(message) for message in group.messages],
            "count": group.count,
            "files": [_problem_file(path, upload) for path, upload in group.files],
            "informational": group.informational,
        }
        for group in case_problems(case=case, with_uploads=True)
        # Shown once, as a notice about the studies still included (see more_than_one_patient).
        if group.code != FileProblem.Code.INCONSISTENT_PATIENT
    ]
    missing = case_disc_missing(case=case) if not processing else []
    reports = _reports(case, uploads, now)
    return {
        "uploads": {
            "imaging": sum(by_status.values()),
            "processing": processing,
            "done": by_status.get(Upload.Status.DONE, 0),
            "failed": by_status.get(Upload.Status.FAILED, 0),
            "unfinished": unfinished,
        },
        "studies": [
            {
                "id": study.pk,
                "date": study.study_date.isoformat() if study.study_date else "",
                "date_shown": date_format(study.study_date, "DATE_FORMAT") if study.study_date else "",
                "description": study.description,
                "modalities": study.modalities,
                "series": study.series_count,
                "images": study.instance_count,
                "included": study.excluded_at is None,
                "left_out": str(study.get_excluded_reason_display()) if study.excluded_at else "",
                "warning": identity_warning(study) if study.excluded_at is None else "",
            }
            for study in studies
        ],
        "study_count": len(included),
        "series_count": sum(study.series_count for study in included),
        "image_count": sum(study.instance_count for study in included),
        "left_out_count": len(studies) - len(included),
        "not_theirs_count": sum(1 for study in included if study.identity_status == Study.Identity.MISMATCH),
        "problems": problems,
        "problem_count": sum(group["count"] for group in problems if not group["informational"]),
        "missing_from_disc": missing,
        "more_than_one_patient": case_has_more_than_one_patient(case=case, studies=included),
        "reports": reports,
        "usable_reports": sum(1 for report in reports if report["state"] == "received"),
        "reports_checking": sum(1 for report in reports if report["state"] == "checking"),
    }


def case_has_more_than_one_patient(*, case: Case, studies: list[Study] | None = None) -> bool:
    """Whether the included studies name more than one person (name or birth date)."""
    if studies is None:
        studies = list(Study.objects.included().filter(case=case))
    people = {
        (study.patient_name_in_files.strip().upper(), study.patient_birth_date_in_files.strip())
        for study in studies
        if study.patient_name_in_files.strip() or study.patient_birth_date_in_files.strip()
    }
    return len(people) > 1
