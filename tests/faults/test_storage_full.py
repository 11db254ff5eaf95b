"""Storage full under a real upload: a real server (gunicorn) whose storage cannot take the next
part (its part file is /dev/full, which answers every write with ENOSPC, as a full disk does)
answers the tus PATCH with 507 and a plain message, never an HTML 500; the offset stays where
it was, the bytes accepted before are intact, and once there is room the upload resumes and
completes whole."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from imaging.models import Upload
from intake.models import Case
from intake.tests.test_tus_live import _sign_in
from intake.tus import messages
from intake.tus.services import PART_SIZE, upload_staging_prefix
from storage.tenant import tenant_storage
from tests.faults.processes import web_server
from tests.live import committed

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def committed_case() -> Iterator[Case]:
    def create() -> Case:
        with schema_context("neuro"):
            return Case.objects.create(
                owner=User.objects.get(email="patient@neuro.example.com"), consented_at=timezone.now()
            )

    case = committed(create)
    yield case

    def remove() -> None:
        with schema_context("neuro"):
            for upload in Upload.objects.filter(case=case):
                if upload.multipart_id:
                    tenant_storage().multipart_abort(upload.storage_key, upload.multipart_id)
                tenant_storage().delete_prefix(upload_staging_prefix(upload=upload))
            tenant_storage().delete_prefix(f"uploads/{case.public_id}")
            Case.objects.filter(pk=case.pk).delete()

    committed(remove)


def _metadata(case: Case) -> str:
    pairs = {"case": str(case.public_id), "kind": "imaging", "filename": "IM000001"}
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items())


def test_a_patch_onto_a_full_disk_answers_507_and_loses_nothing(committed_case: Case, tmp_path: Path) -> None:
    data = os.urandom(PART_SIZE + 4096)
    with web_server(log=tmp_path / "server.log") as server:
        patient = _sign_in(server, "patient@neuro.example.com")
        headers = {**patient.headers, **TUS}
        created = requests.post(
            patient.endpoint,
            headers={
                **headers,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": _metadata(committed_case),
            },
            timeout=60,
        )
        assert created.status_code == 201, created.text
        url = patient.url(created.headers["Location"])
        chunk = {**headers, "Content-Type": "application/offset+octet-stream"}
        first = requests.patch(url, data=data[:4096], headers={**chunk, "Upload-Offset": "0"}, timeout=60)
        assert first.status_code == 204

        # The disk fills up: the part file the next chunk goes to takes no more bytes.
        with schema_context("neuro"):
            upload = Upload.objects.get(case=committed_case)
        part_file = Path(settings.STORAGE_FILESYSTEM_ROOT) / ".multipart" / upload.multipart_id / "data"
        part_file.symlink_to("/dev/full")
        try:
            refused = requests.patch(
                url, data=data[4096:], headers={**chunk, "Upload-Offset": "4096"}, timeout=60
            )
        finally:
            part_file.unlink()  # room again
        assert refused.status_code == 507
        assert refused.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert refused.text == messages.STORAGE_UNAVAILABLE
        assert refused.headers["Upload-Offset"] == "4096"
        assert refused.headers["Tus-Resumable"] == "1.0.0"
        assert patient.head(url).headers["Upload-Offset"] == "4096"

        resumed = requests.patch(
            url, data=data[4096:], headers={**chunk, "Upload-Offset": "4096"}, timeout=60
        )
        assert resumed.status_code == 204, resumed.text
        assert resumed.headers["Upload-Offset"] == str(len(data))
    with schema_context("neuro"):
        upload.refresh_from_db()
        assert upload.status == Upload.Status.RECEIVED
        assert tenant_storage().read_bytes(upload.storage_key) == data  # whole, nothing half-written
