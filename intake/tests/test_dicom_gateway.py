"""The C-STORE gateway: dcmtk's storescu sends a study to the institution's AE title and it lands
in the case its Accession Number names (or the DICOM inbox), through the ingest pipeline."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from pydicom.uid import generate_uid

from accounts.models import User
from imaging.models import Instance
from intake.gateway import INBOX_NUMBER
from intake.models import Case
from tests.dicomweb_cases import _relabel, case_remove, ct_stack
from tests.live import BASE_DIR, child_env, free_port, process_stop
from tests.peers.dcmtk import _listening, storescu
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def gateway(django_db_setup: None, celery_worker_process: Any, django_db_blocker: Any) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dicom_gateway", "--host", "127.0.0.1", "--port", str(port)],
        cwd=BASE_DIR,
        env=child_env(),
    )
    try:
        wait_until(lambda: _listening(port), timeout=60, message="the gateway did not start")
        yield port
    finally:
        process_stop(process)
        with django_db_blocker.unblock(), schema_context("neuro"):
            inbox = Case.objects.filter(number=INBOX_NUMBER).first()
        if inbox is not None:
            with django_db_blocker.unblock():
                case_remove(schema_name="neuro", case=inbox)


@pytest.fixture(scope="module")
def case(django_db_blocker: Any, django_db_setup: None) -> Iterator[Case]:
    with django_db_blocker.unblock(), schema_context("neuro"), transaction.atomic():
        case = Case.objects.create(
            owner=User.objects.get(email="patient@neuro.example.com"),
            status=Case.Status.SUBMITTED,
            number=f"GW-{uuid.uuid4().hex[:8].upper()}",
            submitted_at=timezone.now(),
        )
    yield case
    with django_db_blocker.unblock():
        case_remove(schema_name="neuro", case=case)


def _files(tmp_path: Path, accession: str, count: int) -> tuple[list[Path], list[str]]:
    study_uid, series_uid = generate_uid(), generate_uid()
    paths, uids = [], []
    for number, ds in enumerate(ct_stack(count), start=1):
        _relabel(ds, study_uid=study_uid, series_uid=series_uid, series_number=1, number=number)
        ds.AccessionNumber = accession
        path = tmp_path / f"{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        uids.append(str(ds.SOPInstanceUID))
    return paths, uids


def _held(django_db_blocker: Any, number: str) -> set[str]:
    with django_db_blocker.unblock(), schema_context("neuro"):
        return set(
            Instance.objects.filter(series__study__case__number=number).values_list(
                "sop_instance_uid", flat=True
            )
        )


def test_storescu_sends_a_study_into_the_case_its_accession_names(
    gateway: int, case: Case, tmp_path: Path, django_db_blocker: Any
) -> None:
    paths, uids = _files(tmp_path, str(case.number), 3)
    sent = storescu(port=gateway, called_ae="NEURO", files=paths)
    assert sent.returncode == 0, sent.stderr
    wait_until(
        lambda: _held(django_db_blocker, str(case.number)) == set(uids),
        timeout=120,
        message="the instances never reached the case",
    )


def test_a_study_without_a_case_number_lands_in_the_inbox(
    gateway: int, tmp_path: Path, django_db_blocker: Any
) -> None:
    paths, uids = _files(tmp_path, "NOT-A-CASE", 2)
    assert storescu(port=gateway, called_ae="NEURO", files=paths).returncode == 0
    wait_until(
        lambda: set(uids) <= _held(django_db_blocker, INBOX_NUMBER),
        timeout=120,
        message="the instances never reached the inbox",
    )


def test_an_unknown_ae_title_stores_nothing(gateway: int, tmp_path: Path, django_db_blocker: Any) -> None:
    paths, uids = _files(tmp_path, "X", 1)
    storescu(port=gateway, called_ae="NOSUCHPLACE", files=paths)
    with django_db_blocker.unblock(), schema_context("neuro"):
        assert not Instance.objects.filter(sop_instance_uid=uids[0]).exists()
