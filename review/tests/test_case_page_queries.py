"""The case page reads a fixed number of rows whatever the case holds (issue 15, item 7: 628 ms
with 5 studies and 3,000 instances; tests/benchmarks/bench_case_page.py times it)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file

from imaging.models import Instance, Report, Series, Study
from intake.models import Case
from review.models import CaseAssignment
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.cases import pdf_bytes, user_in


def _add_studies(case: Case, studies: int, instances_per_series: int) -> None:
    files = tenant_storage()
    dicom = open(str(get_testdata_file("MR_small.dcm")), "rb").read()  # noqa: SIM115
    key = f"instances/{uuid.uuid4().hex}.dcm"
    files.save(key, io.BytesIO(dicom), len(dicom))
    for s in range(studies):
        study = Study.objects.create(
            case=case, study_instance_uid=f"1.2.9.{case.pk}.{s}", description=f"Study number {s}"
        )
        for r in range(2):
            series = Series.objects.create(
                study=study,
                series_instance_uid=f"{study.study_instance_uid}.{r}",
                series_number=r + 1,
                modality="MR",
                instance_count=instances_per_series,
            )
            Instance.objects.bulk_create(
                Instance(series=series, sop_instance_uid=f"{series.series_instance_uid}.{i}", storage_key=key)
                for i in range(instances_per_series)
            )
        data = pdf_bytes()
        report_key = f"reports/{uuid.uuid4().hex}.pdf"
        files.save(report_key, io.BytesIO(data), len(data))
        Report.objects.create(
            case=case,
            study=study,
            kind=Report.Kind.PATHOLOGY,
            content_type="application/pdf",
            storage_key=report_key,
            match_status=Report.Match.CORRECTED,
        )


def _page_queries(client: Client, case: Case) -> tuple[int, str]:
    path = f"/workspace/cases/{case.public_id}/"
    client.get(path)  # the first view starts the review and fills the metadata cache
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured.captured_queries), response.content.decode()


def test_it_reads_the_case_page_in_the_same_queries_for_one_study_or_five(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    small, large = make_case(with_files=False), make_case(with_files=False)
    with schema_context(neuro.schema_name):
        reviewer = user_in(neuro, "reviewer1@neuro.example.com")
        for case in (small, large):
            CaseAssignment.objects.create(case=case, reviewer=reviewer, assigned_at=case.created)
        _add_studies(small, 1, 2)
        _add_studies(large, 5, 60)
    for role in ("reviewer1", "coordinator"):
        client = staff_client(role)
        small_queries, _ = _page_queries(client, small)
        large_queries, page = _page_queries(client, large)
        assert large_queries == small_queries, role
        # What the page shows from those reads: every study with its matched report and counts.
        for s in range(5):
            assert f"Study number {s}" in page
        assert page.count("Matched reports: Pathology report") == 5


def test_it_reads_the_case_page_for_a_reviewer_in_at_most_eighteen_queries(
    neuro: Institution, make_case: Callable[..., Case], staff_client: Callable[[str], Client]
) -> None:
    case = make_case(with_files=False)
    with schema_context(neuro.schema_name):
        CaseAssignment.objects.create(
            case=case, reviewer=user_in(neuro, "reviewer1@neuro.example.com"), assigned_at=case.created
        )
        _add_studies(case, 5, 30)
    queries, _ = _page_queries(staff_client("reviewer1"), case)
    # The domain (with the institution, its brand and its service settings), session, user,
    # review settings, the case with its assignment, payment and opinion, the audit row (one
    # statement: the chain's head moved and the row inserted), studies, series, reports, uploads
    # (failed ones and those held up by a problem of ours), notes, file problems, PACS
    # destinations and sends, the reviewer's opinion templates, the consent the patient gave
    # (which text versions), the first series' instances, the first instance's whole row (its
    # pixel index: the viewer's metadata in one ranged read): 18. Was 30 (one per study for its
    # reports, and more), then 25 with the brand, the turnaround and the system problems each
    # read on their own and the audit row written in three statements and a transaction.
    assert queries <= 18
