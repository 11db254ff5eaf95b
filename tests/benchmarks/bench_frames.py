"""DICOMweb frames: bytes read, milliseconds and memory per request, on the filesystem and on S3
(issue 11 item 7), and the memory of the worst frames request (issue 9 item 3). Prints numbers,
asserts nothing.

Run by hand:

    ./sr test tests/benchmarks/bench_frames.py -s

Two 100 MiB multi-frame instances are stored as ordinary case files: 200 native frames of
512×512 16-bit pixels (512 KiB each, as in a cine), and the same pixels RLE-compressed
(encapsulated, one fragment per frame). Each is stored on each backend: the filesystem, and S3 (moto, reached
through a proxy that counts the bytes the object store sends back). Single frames are asked
for as a viewer does, once through the pixel index (ranged reads) and once read as before
indexes (the index set aside: the whole file is streamed, and on S3 spooled, for each request).
Bytes read are what came over the wire from S3, and what the process read (``rchar``, which
includes a few KiB of database traffic) on the filesystem. Peak memory is tracemalloc's (Python
and numpy allocations) for one request; the worst request also reports the worker's resident
memory growth (its high-water mark, reset before the request). Milliseconds are given for the
whole request (through Django's middleware, access checks and audit, which cost most of it on
a busy machine) and for reading the frame alone (storage and decoding: what the backend changes).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from django.test import Client, override_settings
from django_tenants.utils import schema_context
from pydicom.data import get_testdata_file
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from imaging.dicomweb.frames import StoredFile, frame_decoded, frame_stored
from imaging.models import Instance
from intake.models import Case
from storage.tests.conftest import moto_endpoint
from tenants.models import Institution
from tests.counting_proxy import CountingProxy, counting_proxy
from tests.dicomweb_cases import SeriesFiles, case_with_study
from tests.staff import staff_force_login

__all__ = ["moto_endpoint"]

FRAMES = 200
SIDE = 512
WORST_FRAMES = 40  # of 1024×1024: 2 MiB each
RAW = 'multipart/related; type="application/octet-stream"'
AS_STORED = f"{RAW}; transfer-syntax=*"
ASKED = (1, 67, 133, 200)
MiB = 2**20


def _multiframe(frames: int, *, side: int = SIDE, rle: bool = False) -> pydicom.Dataset:
    path = get_testdata_file("emri_small.dcm")
    assert path is not None
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = side
    ds.NumberOfFrames = frames
    ds.PixelData = np.random.default_rng(1).integers(0, 4096, (frames, side, side), dtype="<u2").tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if rle:
        ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


def _url(case: Case, ds: pydicom.Dataset) -> str:
    return (
        f"/dicomweb/cases/{case.public_id}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/"
    )


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


@contextmanager
def _s3(endpoint: str) -> Iterator[CountingProxy]:
    with (
        counting_proxy(endpoint) as proxy,
        override_settings(
            STORAGE_BACKEND="s3",
            S3_ENDPOINT=proxy.address,
            S3_ACCESS_KEY="testing",
            S3_SECRET_KEY="testing",
            S3_BUCKET=f"bench-{uuid.uuid4().hex[:12]}",
            S3_SECURE=False,
            S3_REGION="us-east-1",
            S3_SSE=False,
        ),
    ):
        yield proxy


def _fetch(client: Client, url: str, accept: str) -> int:
    response = client.get(url, HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.status_code
    sent = 0
    for chunk in response.streaming_content:  # type: ignore[attr-defined]
        sent += len(chunk)
    return sent


def _measure(
    client: Client, url: str, accept: str, bytes_read: Callable[[], int], instance: Instance
) -> tuple[float, float, float, float]:
    """Mean bytes read and milliseconds per single-frame request, milliseconds to read the frame
    alone, and the peak allocations of one request."""
    before, elapsed = bytes_read(), 0.0
    for number in ASKED:
        started = time.perf_counter()
        _fetch(client, f"{url}{number}", accept)
        elapsed += time.perf_counter() - started
    read = (bytes_read() - before) / len(ASKED)
    produce = frame_stored if accept == AS_STORED else frame_decoded
    alone = 0.0
    with schema_context("neuro"):
        for number in ASKED:
            started = time.perf_counter()
            produce(StoredFile(instance), number)
            alone += time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    _fetch(client, f"{url}{ASKED[1]}", accept)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return read, elapsed * 1000 / len(ASKED), alone * 1000 / len(ASKED), peak


def _report(backend: str, bytes_read: Callable[[], int], client: Client) -> None:
    native, rle = _multiframe(FRAMES), _multiframe(FRAMES, rle=True)
    sizes = {"native": len(native.PixelData), "RLE": len(rle.PixelData)}
    frames_of = {  # frame 67, as the request sends it
        "native, decoded": native.PixelData[66 * SIDE * SIDE * 2 : 67 * SIDE * SIDE * 2],
        "RLE, as stored": get_frame(rle.PixelData, 66, number_of_frames=FRAMES),
        "RLE, decoded": native.PixelData[66 * SIDE * SIDE * 2 : 67 * SIDE * SIDE * 2],
    }
    case = case_with_study(
        schema_name="neuro",
        owner_email="patient@neuro.example.com",
        series=[SeriesFiles("native", [native]), SeriesFiles("rle", [rle])],
    )
    rows = [
        ("native, decoded", native, RAW),
        ("RLE, as stored", rle, AS_STORED),
        ("RLE, decoded", rle, RAW),
    ]
    for name, ds in (("native", native), ("RLE", rle)):
        before = bytes_read()
        _fetch(client, f"{_url(case, ds)}1", AS_STORED)  # indexes the file (stored before indexes)
        print(
            f"{backend:10} {name:16} {sizes[name] / MiB:5.0f} MiB of pixels; first read (makes the "
            f"index): {(bytes_read() - before) / MiB:7.2f} MiB"
        )
    for mode in ("ranged", "whole"):
        for name, ds, accept in rows:
            with schema_context("neuro"):
                instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
                indexed_length = instance.header_length
                if mode == "whole":  # as before indexes: the file read for each request
                    Instance.objects.filter(pk=instance.pk).update(header_length=0)
                    instance.header_length = 0
            try:
                read, ms, alone, peak = _measure(client, _url(case, ds), accept, bytes_read, instance)
            finally:
                with schema_context("neuro"):
                    Instance.objects.filter(pk=instance.pk).update(header_length=indexed_length)
            print(
                f"{backend:10} {name:16} {mode:6}: {read / MiB:8.3f} MiB read per frame "
                f"(frame {len(frames_of[name]) / MiB:.3f} MiB), {ms:6.1f} ms per request, "
                f"{alone:6.1f} ms reading the frame alone, peak allocations {peak / MiB:5.1f} MiB"
            )
    del native, rle
    gc.collect()


def _worst_request(backend: str, client: Client) -> None:
    """The largest request the server accepts: every frame of a 40-frame 2 MiB-per-frame image."""
    ds = _multiframe(WORST_FRAMES, side=1024)
    case = case_with_study(
        schema_name="neuro", owner_email="patient@neuro.example.com", series=[SeriesFiles("big", [ds])]
    )
    url = _url(case, ds)
    del ds
    attack = client.get(url + ",".join(["1"] * 250), HTTP_ACCEPT=RAW)
    print(f"{backend:10} 250 × frame 1: HTTP {attack.status_code} ({attack.content.decode()})")
    every = ",".join(str(n) for n in range(1, WORST_FRAMES + 1))
    _fetch(client, url + "1", RAW)  # indexed before measuring
    for accept in (RAW, AS_STORED):
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # resets the resident high-water mark
        resident = _status_kib("VmRSS")
        tracemalloc.start()
        started = time.perf_counter()
        sent = _fetch(client, url + every, accept)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        growth = (_status_kib("VmHWM") - resident) / 1024
        print(
            f"{backend:10} worst request, {WORST_FRAMES} frames of 2 MiB "
            f"({'as stored' if accept == AS_STORED else 'decoded'}): {sent / MiB:.0f} MiB sent in "
            f"{elapsed * 1000:.0f} ms, peak allocations {peak / MiB:.1f} MiB, "
            f"resident memory grew {growth:.1f} MiB"
        )


def test_bench_frames(neuro: Institution, moto_endpoint: str) -> None:
    client = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(client, "patient@neuro.example.com")
    print()
    _report("filesystem", _rchar, client)
    _worst_request("filesystem", client)
    with _s3(moto_endpoint) as proxy:
        _report("s3 (moto)", lambda: proxy.received, client)
        _worst_request("s3 (moto)", client)
