"""The staff case page with 5 studies and 3,000 instances: time to first byte and SQL queries.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_case_page.py [--studies 5] [--instances 3000]

It creates its own throw-away database (``test_secondread_bench_case_page``), migrates it, seeds
the demo, adds one case to the ``neuro`` institution with ``--studies`` studies holding
``--instances`` instances in all (three series per study; every instance points at one real
DICOM file from pydicom's test data, stored once), and requests ``/workspace/cases/<id>/`` as
the assigned reviewer and as the coordinator through the whole Django stack (middleware, MFA
check, audit, template, the viewer's bootstrap). TTFB here is the time until Django returns the
complete response (the page is not streamed), so it is what a browser waits for its first byte
minus the network.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.benchmarks.pages import bench_django_setup, demo_database, page_measure, staff_client

bench_django_setup("bench_case_page")

from django.db import connection  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402


def populate(studies: int, instances: int) -> str:
    """One assigned case with the studies and instances; returns the case's public id."""
    from pydicom.data import get_testdata_file

    from accounts.models import User
    from imaging.models import Instance, Report, Series, Study
    from review.models import CaseAssignment
    from review.services import case_review_start
    from storage.tenant import tenant_storage
    from tests.cases import case_make, pdf_bytes

    case = case_make(with_files=False, status="assigned")
    reviewer = User.objects.get(email="reviewer1@neuro.example.com")
    CaseAssignment.objects.create(case=case, reviewer=reviewer, assigned_at=case.created)
    case_review_start(case=case, reviewer=reviewer)
    files = tenant_storage()
    dicom = Path(str(get_testdata_file("MR_small.dcm"))).read_bytes()
    dicom_key = f"instances/{uuid.uuid4().hex}.dcm"
    files.save(dicom_key, io.BytesIO(dicom), len(dicom))
    per_study = instances // studies
    series_per_study = 3
    for s in range(studies):
        study = Study.objects.create(
            case=case,
            study_instance_uid=f"1.2.826.0.9.{case.pk}.{s}",
            description=f"Study {s + 1}",
            modalities="MR",
            series_count=series_per_study,
            instance_count=per_study,
        )
        for r in range(series_per_study):
            count = per_study // series_per_study + (1 if r < per_study % series_per_study else 0)
            series = Series.objects.create(
                study=study,
                series_instance_uid=f"{study.study_instance_uid}.{r}",
                series_number=r + 1,
                modality="MR",
                description=f"Series {r + 1}",
                instance_count=count,
            )
            Instance.objects.bulk_create(
                [
                    Instance(
                        series=series,
                        sop_instance_uid=f"{series.series_instance_uid}.{i}",
                        instance_number=i + 1,
                        transfer_syntax_uid="1.2.840.10008.1.2.1",
                        storage_key=dicom_key,
                        size=len(dicom),
                    )
                    for i in range(count)
                ],
                batch_size=2000,
            )
        data = pdf_bytes()
        report_key = f"reports/{uuid.uuid4().hex}.pdf"
        files.save(report_key, io.BytesIO(data), len(data))
        Report.objects.create(
            case=case, study=study, content_type="application/pdf", storage_key=report_key, size=len(data)
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"populated: 1 case, {studies} studies, {studies * series_per_study} series, {instances} instances")
    return str(case.public_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=5)
    parser.add_argument("--instances", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with demo_database():
        with schema_context("neuro"):
            public_id = populate(args.studies, args.instances)
        path = f"/workspace/cases/{public_id}/"
        # A shared machine's load shows in the wall time; the queries and CPU time do not change.
        print(f"load average: {os.getloadavg()[0]:.1f}")
        for role in ("reviewer1", "coordinator"):
            page_measure(staff_client(f"{role}@neuro.example.com"), f"{role}: case page", path, args.repeat)


if __name__ == "__main__":
    main()
