"""Leaving a study out of a case without deleting it.

A patient unticks a study they do not want reviewed, or removes one that is not theirs; staff
exclude one that does not belong. The study's rows and files stay (so nothing is lost silently,
and staff can see what was left out and why); ``Study.excluded_at`` takes it out of what
reviewers are shown (``Study.objects.included()``), of report matching and of the counts the
patient reads. Including it again undoes all of that.

Precondition for every function: the caller checked that ``by`` may change the study's case
(the patient through intake's access helper, staff through review's). Who did it is recorded
on the study; recording it in the audit log is the caller's (it has the request).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from imaging.cases import CaseRow
from imaging.ingest.reports import case_reports_match
from imaging.models import Report, Study


def study_exclude(*, study: Study, by: User, reason: str) -> Study:
    """Leave ``study`` out of its case (``reason``: a ``Study.Exclusion``). Idempotent: an
    excluded study keeps its first time, but takes the latest reason."""
    if reason not in Study.Exclusion.values:
        raise ValueError(f"unknown exclusion reason {reason!r}")
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.excluded_at is None:
            study.excluded_at = timezone.now()
        study.excluded_by = by
        study.excluded_reason = reason
        study.save(update_fields=["excluded_at", "excluded_by", "excluded_reason"])
        # Reports linked to it automatically are matched again among the studies left.
        Report.objects.filter(study=study).exclude(match_status=Report.Match.CORRECTED).update(
            study=None, match_status=Report.Match.PENDING
        )
    case_reports_match(case=study.case)
    return study


def study_include(*, study: Study, by: User) -> Study:
    """Put an excluded ``study`` back into its case."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.excluded_at is None:
            return study
        study.excluded_at = None
        study.excluded_by = None
        study.excluded_reason = ""
        study.save(update_fields=["excluded_at", "excluded_by", "excluded_reason"])
    case_reports_match(case=study.case)
    return study


def case_studies_choose(*, case: CaseRow, included_ids: Iterable[int], by: User) -> tuple[int, int]:
    """The patient's choice of what to send: the studies in ``included_ids`` are included, every
    other study of ``case`` is left out (unticked). A study the patient removed as not theirs
    stays removed unless they tick it again. Ids of other cases' studies are ignored. Returns
    (included, left out)."""
    wanted = {int(pk) for pk in included_ids}
    included = left_out = 0
    for study in Study.objects.filter(case=case).order_by("pk"):
        if study.pk in wanted:
            study_include(study=study, by=by)
            included += 1
        else:
            if study.excluded_at is None:
                study_exclude(study=study, by=by, reason=Study.Exclusion.PATIENT_UNTICKED)
            left_out += 1
    return included, left_out
