"""Memory of the worst DICOMweb frames request (issue 9, item 3). Prints numbers, asserts nothing.

Run by hand:

    ./sr test tests/benchmarks/bench_frames.py -s

A multi-frame instance of 1024×1024 16-bit frames (2 MiB each, 40 frames) is stored as an
ordinary case file. The largest request the server still accepts (every frame once, decoded and
as stored) is read to the end, and the peak of Python and numpy allocations while producing it
(tracemalloc) is printed. The attack of the security review (250 × frame 1 of a 2 MB image)
is shown to be refused.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pydicom
from django.test import Client
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tenants.models import Institution
from tests.dicomweb_cases import SeriesFiles, case_with_study
from tests.staff import staff_force_login

FRAMES = 40
SIDE = 1024
RAW = 'multipart/related; type="application/octet-stream"'


def _big_multiframe() -> pydicom.Dataset:
    path = get_testdata_file("emri_small.dcm")
    assert path is not None
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = SIDE
    ds.NumberOfFrames = FRAMES
    ds.PixelData = np.random.default_rng(1).integers(0, 4096, (FRAMES, SIDE, SIDE), dtype="<u2").tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


def test_bench_worst_frames_request(neuro: Institution) -> None:
    ds = _big_multiframe()
    case = case_with_study(
        schema_name="neuro", owner_email="patient@neuro.example.com", series=[SeriesFiles("big", [ds])]
    )
    url = (
        f"/dicomweb/cases/{case.public_id}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/"
    )
    del ds
    gc.collect()
    client = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(client, "patient@neuro.example.com")

    attack = client.get(url + ",".join(["1"] * 250), HTTP_ACCEPT=RAW)
    print(f"\n250 × frame 1: HTTP {attack.status_code} ({attack.content.decode()})")
    every = ",".join(str(n) for n in range(1, FRAMES + 1))
    for accept in (RAW, f"{RAW}; transfer-syntax=*"):
        gc.collect()
        tracemalloc.start()
        response = client.get(url + every, HTTP_ACCEPT=accept)
        chunks = response.streaming_content  # type: ignore[attr-defined]
        sent = sum(len(bytes(chunk)) for chunk in chunks)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{FRAMES} frames of 2 MiB ({'as stored' if '*' in accept else 'decoded'}): "
            f"HTTP {response.status_code}, {sent / 2**20:.0f} MiB sent, "
            f"peak allocations {peak / 2**20:.1f} MiB"
        )
