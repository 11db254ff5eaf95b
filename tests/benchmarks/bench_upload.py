"""Uploading 1 GB with a real tus client (tuspy) to SecondRead's tus endpoint over loopback,
beside a raw HTTP PUT of the same bytes to a trivial server that streams them to disk.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_upload.py [--size-mb 1024] [--chunk-mb 32]

It creates its own throw-away database (``test_secondread_bench_upload``), migrates it, seeds the
demo, creates a draft case for patient@neuro, starts gunicorn on it (one worker, eight threads,
as the tests' live server) and signs in over HTTP. Then it measures:

1. baseline: one streamed HTTP PUT of the file to a trivial ``http.server`` in another process
   that writes it to disk in 1 MiB pieces (and fsyncs at the end, as storage does);
2. tus: the same file with tuspy in ``--chunk-mb`` chunks (MB/s, and the gunicorn worker's
   resident memory before, at its peak while receiving, and after, from /proc/<pid>/status);
3. resume: the same file again, the connection cut in the middle of the chunk at about 50%,
   then a fresh tuspy client that asks the server for the offset and sends the rest: how many
   bytes were sent twice.

Targets (issue 4): tus rate >= half the baseline's, worker memory growth < 100 MB, and a resume
re-sends at most one chunk. Completed uploads are queued for ingest on this run's own Celery
queue, which no worker consumes; the queue is deleted at the end with the database and files.

Longer than most modules (~490 lines) on purpose: a benchmark is one script run by hand; its
set-up (database, server, sign-in) and its measurements read best top to bottom in one file.
"""

# long module: a stand-alone script run by hand; its raw PUT server, tus client
# runs and resume check must stay in one file to be read and run as one.

from __future__ import annotations

import argparse
import http.server
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))
RUN_ID = "bench_upload"
MiB = 1024 * 1024
HOST = "neuro.localhost"
GUNICORN_WORKERS = 2  # as ./sr run starts it (config.launcher.GUNICORN_SETTINGS)
RATE_TARGET = 0.5  # tus at least half the raw PUT's rate
MEMORY_TARGET_MB = 100


# -- the baseline server (runs in its own process) ---------------------------------------------


class _PutToDisk(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target = Path(os.devnull)

    def do_PUT(self) -> None:
        remaining = int(self.headers["Content-Length"])
        with open(self.target, "wb") as out:
            while remaining:
                data = self.rfile.read(min(MiB, remaining))
                if not data:
                    break
                out.write(data)
                remaining -= len(data)
            out.flush()
            os.fsync(out.fileno())
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def baseline_server(port: int, target: str) -> None:
    _PutToDisk.target = Path(target)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), _PutToDisk).serve_forever()


# -- helpers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, host: str, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, headers={"Host": host}, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, field
    return int(match.group(1)) / 1024


def gunicorn_worker_pids(master: int, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) >= count:
            return [int(child) for child in children]
        time.sleep(0.1)
    raise RuntimeError("no gunicorn worker")


class PeakSampler(threading.Thread):
    """Samples the resident memory of processes every 20 ms; ``peaks`` are the highest seen.

    Every gunicorn worker is sampled: either may take any request of an upload."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peaks = {pid: rss_mb(pid) for pid in pids}
        self.running = True

    def run(self) -> None:
        while self.running:
            for pid in self.pids:
                self.peaks[pid] = max(self.peaks[pid], rss_mb(pid))
            time.sleep(0.02)

    def stop(self) -> dict[int, float]:
        self.running = False
        self.join()
        return self.peaks


class CountingFile(io.FileIO):
    """The file tuspy uploads, counting the bytes it read to send."""

    sent = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.sent += len(data) if data else 0
        return data or b""


def start_profiler(master: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``; not a dependency of the project) sampling every worker."""
    profiler = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--output",
            output,
            "--pid",
            str(master),
            "--subprocesses",
            # Collapsed stacks (one line each, for grep and sort) unless an .svg is asked for.
            "--format",
            "flamegraph" if output.endswith(".svg") else "raw",
        ],
        cwd=BASE_DIR,
    )
    time.sleep(1)  # let it attach
    return profiler


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        written = 0
        while written < size:
            piece = os.urandom(min(64 * MiB, size - written))
            out.write(piece)
            written += len(piece)


def sign_in(port: int) -> str:
    import requests

    from institutions.management.commands.seed_demo import DEMO_PASSWORD

    session = requests.Session()
    base = f"http://127.0.0.1:{port}"
    page = session.get(f"{base}/accounts/login/", headers={"Host": HOST}, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "no sign-in form"
    session.post(
        f"{base}/accounts/login/",
        data={
            "login": "patient@neuro.example.com",
            "password": DEMO_PASSWORD,
            "csrfmiddlewaretoken": token.group(1),
        },
        headers={"Host": HOST},
        allow_redirects=False,
        timeout=10,
    )
    assert "sessionid" in session.cookies, "sign-in failed"
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


def rate(size: int, seconds: float) -> float:
    return size / MiB / seconds


# -- the measurements --------------------------------------------------------------------------


def measure_baseline(path: Path, size: int, workdir: Path) -> float:
    import requests

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--baseline-server", str(port), str(workdir / "baseline.bin")],
        cwd=BASE_DIR,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/", "127.0.0.1")
        start = time.perf_counter()
        with open(path, "rb") as body:
            response = requests.put(f"http://127.0.0.1:{port}/upload", data=body, timeout=600)
        elapsed = time.perf_counter() - start
        assert response.status_code == 201 and (workdir / "baseline.bin").stat().st_size == size
    finally:
        server.terminate()
        server.wait()
        (workdir / "baseline.bin").unlink(missing_ok=True)
    return elapsed


def measure_storage_alone(path: Path, part_size: int) -> tuple[float, float]:
    """The storage backend's own ceiling: the file put as multipart parts of ``part_size`` and
    completed, in-process, no HTTP. Returns (seconds for the parts, seconds to complete)."""
    from django_tenants.utils import schema_context

    from storage.tenant import tenant_storage

    with schema_context("neuro"):
        storage = tenant_storage()
        key = "uploads/bench/storage-alone"
        upload_id = storage.multipart_start(key)
        parts = []
        buffer = bytearray(part_size)
        start = time.perf_counter()
        with open(path, "rb") as source:
            number = 1
            while count := source.readinto(buffer):
                parts.append(
                    (number, storage.multipart_put(key, upload_id, number, io.BytesIO(buffer[:count]), count))
                )
                number += 1
        middle = time.perf_counter()
        storage.multipart_complete(key, upload_id, parts)
        end = time.perf_counter()
        storage.delete(key)
    return middle - start, end - middle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--chunk-mb", type=int, default=32)
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="record the gunicorn workers with py-spy during the tus upload: a flame graph if PATH "
        "ends in .svg, else collapsed stacks",
    )
    args = parser.parse_args()
    size, chunk = args.size_mb * MiB, args.chunk_mb * MiB

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["SR_TEST_RUN"] = RUN_ID
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment
    from django.utils import timezone
    from django_tenants.utils import schema_context
    from tusclient.client import TusClient

    from accounts.models import User
    from imaging.models import Upload
    from intake.models import Case
    from intake.tus.services import PART_SIZE
    from tests.live import benchmark_run_remove, child_database_url, gunicorn_command

    workdir = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    source = workdir / "study.bin"
    print(f"making a {args.size_mb} MB file of random bytes ...", flush=True)
    make_file(source, size)

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    gunicorn: subprocess.Popen[bytes] | None = None
    try:
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        with schema_context("neuro"):
            case = Case.objects.create(
                owner=User.objects.get(email="patient@neuro.example.com"), consented_at=timezone.now()
            )
        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=child_database_url(),
            PLATFORM_PORT=str(port),
            PYTHONUNBUFFERED="1",
        )
        # The settings of ./sr run (config/launcher.py), access log included.
        gunicorn = subprocess.Popen(
            gunicorn_command(port),
            cwd=BASE_DIR,
            env=env,
        )
        wait_for(f"http://127.0.0.1:{port}/healthz", settings.PLATFORM_DOMAIN)
        workers = gunicorn_worker_pids(gunicorn.pid, GUNICORN_WORKERS)
        cookie = sign_in(port)
        headers = {"Host": HOST, "Cookie": cookie}
        endpoint = f"http://127.0.0.1:{port}/intake/tus/"
        metadata = {"case": str(case.public_id), "kind": "imaging", "filename": "study.bin"}

        print("baseline: raw HTTP PUT to a trivial server ...", flush=True)
        baseline = measure_baseline(source, size, workdir)

        print("storage alone: multipart put + complete in-process ...", flush=True)
        parts_seconds, complete_seconds = measure_storage_alone(source, PART_SIZE)

        print("tus: tuspy to SecondRead ...", flush=True)
        # A warm-up upload, so the worker's imports and caches are loaded before we measure.
        warm = TusClient(endpoint, headers=headers).uploader(
            file_stream=io.BytesIO(b"w" * (PART_SIZE + 10)), chunk_size=chunk, metadata=metadata
        )
        warm.upload()
        before = {pid: rss_mb(pid) for pid in workers}
        sampler = PeakSampler(workers)
        sampler.start()
        profiler = start_profiler(gunicorn.pid, args.profile) if args.profile else None
        start = time.perf_counter()
        with CountingFile(source, "rb") as stream:
            uploader: Any = TusClient(endpoint, headers=headers).uploader(
                file_stream=stream, chunk_size=chunk, metadata=metadata
            )
            uploader.upload()
        elapsed = time.perf_counter() - start
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes the flame graph when interrupted
            profiler.wait(timeout=120)
        peaks = sampler.stop()
        after = {pid: rss_mb(pid) for pid in workers}
        growth = max(peaks[pid] - before[pid] for pid in workers)
        growth_after = max(after[pid] - before[pid] for pid in workers)
        with schema_context("neuro"):
            upload = Upload.objects.get(public_id=uploader.url.rsplit("/", 1)[1])
            assert upload.status == Upload.Status.RECEIVED and upload.offset == size, upload.status

        print("resume: cut at 50% in the middle of a chunk, then a fresh client ...", flush=True)
        with CountingFile(source, "rb") as first:
            cut: Any = TusClient(endpoint, headers=headers).uploader(
                file_stream=first, chunk_size=chunk, metadata=metadata
            )
            chunks_before_cut = (size // 2) // chunk
            cut.upload(stop_at=chunks_before_cut * chunk)
            offset = cut.offset
            first.seek(offset)
            half_chunk = first.read(chunk // 2)
        path = cut.url.split(str(port), 1)[1]
        connection_ = socket.create_connection(("127.0.0.1", port))
        connection_.sendall(
            (
                f"PATCH {path} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {chunk}\r\n\r\n"
            ).encode()
            + half_chunk
        )
        connection_.close()  # the connection drops mid-chunk
        head_headers = {**headers, "Tus-Resumable": "1.0.0"}
        deadline = time.monotonic() + 30
        while (
            int(requests.head(cut.url, headers=head_headers, timeout=10).headers["Upload-Offset"]) == offset
        ):
            assert time.monotonic() < deadline, "the server kept nothing of the cut chunk"
            time.sleep(0.05)
        with CountingFile(source, "rb") as rest:
            resumed: Any = TusClient(endpoint, headers=headers).uploader(
                file_stream=rest, chunk_size=chunk, url=cut.url
            )
            resume_offset = resumed.offset
            resumed.upload()
        sent_total = first.sent + rest.sent  # first.sent includes the half chunk sent before the cut
        resent = sent_total - size

        print("baseline again (the machine may be shared: the faster of the two is used) ...", flush=True)
        baseline = min(baseline, measure_baseline(source, size, workdir))

        ratio = baseline / elapsed
        verdicts = {
            "rate": ratio >= RATE_TARGET,
            "memory": growth < MEMORY_TARGET_MB,
            "resume": resent <= chunk,
        }
        print()
        print(f"file: {args.size_mb} MB, tus chunk {args.chunk_mb} MB, storage part {PART_SIZE // MiB} MiB")
        print(f"baseline raw PUT:       {rate(size, baseline):8.1f} MB/s  ({baseline:.2f} s, the faster run)")
        print(
            f"storage alone:          {rate(size, parts_seconds + complete_seconds):8.1f} MB/s  "
            f"(parts {parts_seconds:.2f} s at {rate(size, parts_seconds):.0f} MB/s, "
            f"complete {complete_seconds:.2f} s): the ceiling of any upload into this backend"
        )
        print(f"tus (tuspy):            {rate(size, elapsed):8.1f} MB/s  ({elapsed:.2f} s)")
        print(
            "gunicorn workers' RSS:  "
            + "; ".join(
                f"{before[pid]:.1f} -> peak {peaks[pid]:.1f} -> {after[pid]:.1f} MB" for pid in workers
            )
        )
        print(
            f"resume after a cut at {offset / size:.0%} + half a chunk: "
            f"server kept up to {resume_offset} bytes, "
            f"client then sent {rest.sent} bytes for {size - resume_offset} missing"
        )
        print()
        print("against the targets of issue 4:")
        print(
            f"  rate:   tus / baseline = {ratio:.2f} ({ratio:.0%})   target >= {RATE_TARGET:.2f}   "
            f"{'MET' if verdicts['rate'] else 'NOT MET'}"
        )
        print(
            f"  memory: worker growth {growth:.1f} MB at peak ({growth_after:.1f} MB after)   "
            f"target < {MEMORY_TARGET_MB} MB   {'MET' if verdicts['memory'] else 'NOT MET'}"
        )
        print(
            f"  resume: bytes sent twice {resent} ({resent / chunk:.2f} chunk)   target <= 1 chunk   "
            f"{'MET' if verdicts['resume'] else 'NOT MET'}"
        )
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
        benchmark_run_remove(old_name, workdir)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline-server":
        baseline_server(int(sys.argv[2]), sys.argv[3])
    else:
        main()
