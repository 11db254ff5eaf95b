"""A tus PATCH onto a full disk: a tus answer in plain words (507), never an HTML 500; the offset
stays where it was, the bytes accepted before are intact, and the client resumes once there is
room. The disk is made full at the OS boundary (every fsync fails with ENOSPC, as a full disk
reports it); test_tus_live.py's neighbour in tests/faults does it to a real server."""

from __future__ import annotations

import errno
import os

import pytest
from django.test import Client

from imaging.models import Upload
from intake.tests.test_tus_protocol import TUS, _create, _patch, _upload, case, patient_client
from intake.tus import messages
from intake.tus.services import PART_SIZE
from storage.tenant import tenant_storage

__all__ = ["case", "patient_client"]  # fixtures


def _no_space(descriptor: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_it_answers_507_and_keeps_what_it_had_when_the_disk_is_full(
    patient_client: Client, case: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(PART_SIZE + 4096)
    location = _create(patient_client, case, len(data))["Location"]  # type: ignore[arg-type]
    assert _patch(patient_client, location, 0, data[:4096]).status_code == 204

    with monkeypatch.context() as full:
        full.setattr(os, "fsync", _no_space)
        full.setattr(os, "fdatasync", _no_space)
        refused = _patch(patient_client, location, 4096, data[4096:])
    assert refused.status_code == 507
    assert refused["Content-Type"] == "text/plain; charset=utf-8"
    assert refused.content.decode() == messages.STORAGE_UNAVAILABLE
    assert refused["Tus-Resumable"] == "1.0.0"
    assert refused["Upload-Offset"] == "4096"
    head = patient_client.head(location, **TUS)
    assert head["Upload-Offset"] == "4096"
    assert _upload(location).status == Upload.Status.RECEIVING

    # Room again: the client resumes from the offset, and the file is whole.
    resumed = _patch(patient_client, location, 4096, data[4096:])
    assert resumed.status_code == 204 and resumed["Upload-Offset"] == str(len(data))
    upload = _upload(location)
    assert upload.status == Upload.Status.RECEIVED
    assert tenant_storage().read_bytes(upload.storage_key) == data
