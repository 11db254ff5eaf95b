"""The demo seed gives each institution's demo patient a submitted case with a real CT study on
a CD and its report, matched."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from imaging.ingest import messages
from imaging.ingest.selectors import case_imaging_summary, case_problems
from imaging.models import Report
from intake.demo import DEMO_AXIAL_SLICES, DEMO_QUESTION, demo_case_ensure
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution


def test_it_seeds_a_submitted_case_with_a_matched_report(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = Case.objects.get(owner__email="patient@neuro.example.com", question=DEMO_QUESTION)
        assert case.status == Case.Status.SUBMITTED
        assert case.number and case.number.startswith("NNI-")
        (study,) = case_imaging_summary(case=case)
        assert study.modalities == ["CT"]
        assert [(s.description, s.instance_count) for s in study.series] == [
            ("SCOUT", 1),
            ("AX HEAD 5MM", DEMO_AXIAL_SLICES),
            ("AX BRAIN 5MM (JPEG 2000)", 3),
        ]
        assert study.instance_count == DEMO_AXIAL_SLICES + 4
        assert all(tenant_storage().exists(series.preview_key) for series in study.series)
        report = Report.objects.get(case=case)
        assert (report.match_status, report.study_id, report.match_reason) == (
            Report.Match.MATCHED,
            study.id,
            messages.MATCH_ACCESSION,
        )
        # The disc's autorun file is set aside quietly; nothing else is wrong.
        assert [(group.code, group.count) for group in case_problems(case=case)] == [("skipped_program", 1)]


def test_it_seeds_the_demo_case_once(neuro: Institution) -> None:
    with tenant_context(neuro):
        before = Case.objects.count()
        first = Case.objects.get(owner__email="patient@neuro.example.com", question=DEMO_QUESTION)
        assert demo_case_ensure(institution=neuro) == first
        assert Case.objects.count() == before
