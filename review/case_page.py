"""What the staff case page shows, read in a fixed number of queries whatever the case holds.

The page used to run one query per study for its matched reports, a second assignment, opinion
and payment query after the case, and the reviewer list for reviewers who cannot assign; with 5
studies and 3,000 instances it took 628 ms to its first byte. Everything here is one query per
kind of row (studies, series, reports, notes, follow-ups, outcomes), counts come from the
columns ingest keeps (``instance_count``), and nothing is read per instance
(``tests/benchmarks/bench_case_page.py`` measures it; ``test_case_page_queries`` counts it).

On a busy machine each round trip to the database costs a scheduling wait, so the page also
reads the institution's brand and service settings with its domain (``tenants.middleware``),
its failed and held-up uploads in one query, and writes its audit row in one statement (18
statements in all, from 25).

Precondition for every function: the caller got ``case`` through ``review.access`` (the page's
``case_endpoint``), so the user may see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from accounts.models import User
from imaging.ingest.selectors import case_upload_troubles
from imaging.models import Report, Series, Study, Upload
from intake.models import Case
from review.addenda import opinion_pdf_versions
from review.models import CaseNote, FollowUpQuestion, Opinion, OpinionAddendum, Outcome, PeerReview
from review.peer_review import peer_reviews_of


@dataclass
class CasePage:
    studies: list[Study]  # included in the case (the viewer shows these)
    excluded_studies: list[Study]  # left out by the patient or staff: kept, hidden by default
    mismatched_studies: list[Study]  # included, and the files name someone else
    failed_uploads: list[Upload]  # what could not be processed: staff may download the bytes
    system_problems: list[str]  # problems of ours holding files up (storage failing)
    reports: list[Report]
    opinion: Opinion | None
    notes: list[CaseNote]
    follow_ups: list[FollowUpQuestion]
    outcomes: list[Outcome]
    addenda: list[OpinionAddendum]  # of the signed opinion, oldest first
    peer_reviews: list[PeerReview]  # of the signed opinion, oldest first


def case_opinion(case: Case) -> Opinion | None:
    """The case's opinion, from the row the access helper joined when it did (no query), else read."""
    try:
        return case.opinion
    except Opinion.DoesNotExist:
        return None


def case_page_read(*, case: Case, with_outcomes: bool) -> CasePage:
    """The studies (each with ``series`` and ``matched_reports``), reports, opinion, notes,
    follow-up questions, outcomes, addenda and peer reviews of ``case``: at most eight queries.
    Follow-up questions are only read once the opinion was released (patients ask them about
    it), outcomes only when ``with_outcomes`` (coordinators record and see them), addenda and
    peer reviews once it is signed."""
    every_study = list(
        Study.objects.filter(case=case)
        .select_related("excluded_by")
        .prefetch_related(Prefetch("series", queryset=Series.objects.order_by("series_number", "id")))
    )
    studies = [study for study in every_study if study.excluded_at is None]
    excluded = [study for study in every_study if study.excluded_at is not None]
    reports = list(Report.objects.filter(case=case).order_by("created", "id"))
    by_pk = {study.pk: study for study in every_study}
    matched: dict[int, list[Report]] = {study.pk: [] for study in studies}
    for report in reports:
        if report.study_id in by_pk:
            # The report's study from the list above, not one more query per report.
            report.study = by_pk[report.study_id]
            matched.setdefault(report.study_id, []).append(report)
    for study in studies:
        study.matched_reports = matched[study.pk]  # type: ignore[attr-defined]
    opinion = case_opinion(case)
    released = opinion is not None and opinion.released_at is not None
    signed = opinion is not None and opinion.is_signed
    troubles = case_upload_troubles(case=case)
    return CasePage(
        studies=studies,
        excluded_studies=excluded,
        mismatched_studies=[s for s in studies if s.identity_status == Study.Identity.MISMATCH],
        failed_uploads=troubles.failed,
        system_problems=troubles.system_problems,
        reports=reports,
        opinion=opinion,
        notes=list(CaseNote.objects.filter(case=case).select_related("author")),
        follow_ups=list(FollowUpQuestion.objects.filter(case=case).select_related("asked_by", "answered_by"))
        if released
        else [],
        outcomes=list(Outcome.objects.filter(case=case).select_related("recorded_by"))
        if with_outcomes
        else [],
        addenda=list(OpinionAddendum.objects.filter(opinion=opinion)) if signed else [],
        peer_reviews=peer_reviews_of(case) if signed else [],
    )


def assignable_reviewers() -> list[User]:
    return list(User.objects.filter(is_reviewer=True, is_active=True).order_by("full_name", "email"))


def case_page_context(page: CasePage) -> dict[str, Any]:
    return {
        "studies": page.studies,
        "excluded_studies": page.excluded_studies,
        "mismatched_studies": page.mismatched_studies,
        "failed_uploads": page.failed_uploads,
        "system_problems": page.system_problems,
        "viewer_studies": page.studies,  # the viewer's bootstrap reuses them (no second read)
        "reports": page.reports,
        "opinion": page.opinion,
        "notes": page.notes,
        "follow_ups": page.follow_ups,
        "outcomes": page.outcomes,
        "addenda": page.addenda,
        "peer_reviews": page.peer_reviews,
        "pdf_versions": opinion_pdf_versions(page.opinion, page.addenda)
        if page.opinion is not None and page.opinion.is_signed
        else [],
    }
