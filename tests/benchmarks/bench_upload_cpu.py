"""The web server's CPU per GB received through the real tus endpoint, beside a raw sink.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_upload_cpu.py [--size-mb 1024] [--uploads 40] \
        [--profile PATH]

The machine has two cores shared by browser, web, worker and database: a CPU-second the web
server spends receiving bytes is a second of wall time in a folder drop (issue 13). Set-up as
``bench_upload.py`` (throw-away database, seeded demo, gunicorn as ``./sr run`` starts it:
two gthread workers of eight threads). It sends, with a small HTTP client, and reads the
CPU time (user + system) of gunicorn's processes from /proc before and after each of:

a1. one upload of ``--size-mb`` in ONE PATCH (the cost per byte);
a2. the same size in PATCHes of 8 MiB, the wizard's chunk size (bytes plus requests);
b.  ``--uploads`` uploads of 8-16 MiB each, four at a time, each a creation-with-upload POST
    carrying its first 8 MiB and a PATCH with the rest, as the wizard sends a folder drop's
    batches; also the p50 and p90 wall time of those requests;

and the same bytes, in the same requests, to a raw sink: a process that reads each request
body from its socket into a buffer, writes it to a file and fsyncs it (the floor of any
server that keeps the bytes durably).

``--profile PATH`` runs the workers under cProfile (each request's own thread, enabled by
gunicorn's pre_request hook and written at exit) and prints the top functions to PATH.
"""

# long module: a stand-alone script run by hand; its raw sink, its small HTTP client, the
# scenarios and the profiler hooks gunicorn loads from it read best, and run, as one file.

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))
RUN_ID = "bench_upload_cpu"
MiB = 1024 * 1024
HOST = "neuro.localhost"
CHUNK = 8 * MiB  # intake.views.UPLOAD_CHUNK_SIZE
PARALLEL = 4  # the wizard's parallel uploads
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- gunicorn hooks for --profile (this module is gunicorn's config file then) -------------------

_profiles: dict[int, object] = {}


_seen = [0]
WARM_UP_REQUESTS = 8  # per worker: its first requests import and fill caches, left out


def pre_request(worker: object, request: object) -> None:
    import cProfile

    _seen[0] += 1
    if _seen[0] <= WARM_UP_REQUESTS:
        return
    # CPU time of this thread, not wall time: waits on the database or the network cost nothing.
    profile = _profiles.setdefault(threading.get_ident(), cProfile.Profile(time.thread_time))
    profile.enable()  # type: ignore[attr-defined]


def post_request(worker: object, request: object, environ: object, response: object) -> None:
    profile = _profiles.get(threading.get_ident())
    if profile is not None:
        profile.disable()  # type: ignore[attr-defined]


def worker_exit(server: object, worker: object) -> None:
    import pstats

    output = os.environ.get("BENCH_PROFILE_OUTPUT")
    if not output or not _profiles:
        return
    profiles = list(_profiles.values())
    stats = pstats.Stats(profiles[0])  # type: ignore[arg-type]
    for profile in profiles[1:]:
        stats.add(profile)  # type: ignore[arg-type]
    stats.dump_stats(f"{output}.{os.getpid()}.prof")


# -- the raw sink (runs in its own process) ------------------------------------------------------


def sink_server(port: int, target: str) -> None:
    """HTTP/1.1 keep-alive server answering every request with 204 after keeping its body."""
    listener = socket.create_server(("127.0.0.1", port))

    def serve(connection: socket.socket) -> None:
        buffer = bytearray(MiB)
        view = memoryview(buffer)
        reader = connection.makefile("rb")
        with connection, reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line if head or line.strip() else b""
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                descriptor = os.open(
                    f"{target}.{threading.get_ident()}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
                )
                try:
                    while length:
                        count = reader.readinto(view[: min(MiB, length)])
                        if not count:
                            return
                        os.write(descriptor, view[:count])
                        length -= count
                    os.fdatasync(descriptor)
                finally:
                    os.close(descriptor)
                connection.sendall(b"HTTP/1.1 204 No Content\r\nUpload-Offset: 0\r\n\r\n")

    while True:
        connection, _ = listener.accept()
        threading.Thread(target=serve, args=(connection,), daemon=True).start()


# -- helpers -------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User and system CPU of the processes (all their threads), from /proc."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11])  # utime, stime: fields 14 and 15 of proc(5)
        system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


class Client:
    """One keep-alive connection; requests send bytes from one shared random block."""

    def __init__(self, port: int, cookie: str, block: memoryview) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookie = cookie
        self.block = block
        self.timings: list[float] = []

    def send(self, method: str, path: str, headers: dict[str, str], length: int) -> http.client.HTTPResponse:
        start = time.perf_counter()
        self.connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        all_headers = {
            "Host": HOST,
            "Cookie": self.cookie,
            "Tus-Resumable": "1.0.0",
            "Content-Length": str(length),
            **headers,
        }
        if length:
            all_headers["Content-Type"] = "application/offset+octet-stream"
        for name, value in all_headers.items():
            self.connection.putheader(name, value)
        self.connection.endheaders()
        sent = 0
        while sent < length:
            piece = self.block[: min(len(self.block), length - sent)]
            self.connection.send(piece)
            sent += len(piece)
        response = self.connection.getresponse()
        response.read()
        if length:
            self.timings.append(time.perf_counter() - start)
        return response

    def upload(self, *, case: str, size: int, first: int, chunk: int) -> str:
        """Create an upload of ``size`` bytes carrying its ``first`` bytes, then PATCH the rest
        in pieces of ``chunk``."""
        metadata = ",".join(
            f"{key} {b64encode(value.encode()).decode()}"
            for key, value in {"case": case, "kind": "imaging", "filename": "batch.zip"}.items()
        )
        response = self.send(
            "POST", "/intake/tus/", {"Upload-Length": str(size), "Upload-Metadata": metadata}, first
        )
        assert response.status == 201, (response.status, response.read())
        location = response.headers["Location"]
        offset = int(response.headers["Upload-Offset"])
        assert offset == first, (offset, first)
        while offset < size:
            count = min(chunk, size - offset)
            response = self.send("PATCH", location, {"Upload-Offset": str(offset)}, count)
            assert response.status == 204, (response.status, response.read())
            offset = int(response.headers["Upload-Offset"])
        return location


def in_parallel(jobs: list[Callable[[], None]], threads: int) -> None:
    pending = list(reversed(jobs))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        while True:
            with lock:
                if not pending or errors:
                    return
                job = pending.pop()
            try:
                job()
            except BaseException as error:
                errors.append(error)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


def batch_sizes(count: int) -> list[int]:
    """Sizes between 8 and 16 MiB, spread evenly (the wizard's batches of a folder drop)."""
    return [8 * MiB + (index * 7919 * 1024) % (8 * MiB) for index in range(count)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the measurements --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="each measure is the lowest of this many")
    parser.add_argument(
        "--only", default="a1,a2,b", help="the measures to run, of a1,a2,b,h (HEAD),o (OPTIONS)"
    )
    parser.add_argument("--tmpfs", action="store_true", help="store the files in /dev/shm, not on disk")
    parser.add_argument(
        "--profile", metavar="PATH", help="cProfile the gunicorn workers; top functions to PATH"
    )
    args = parser.parse_args()
    size = args.size_mb * MiB
    if args.tmpfs:
        # Files in memory: no disk writeback in the numbers, which on a shared machine vary
        # more than what is measured.
        os.environ["SR_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-upload-cpu-", dir="/dev/shm")

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["SR_TEST_RUN"] = RUN_ID
    import django

    django.setup()
    from bench_upload import free_port, gunicorn_worker_pids, sign_in, wait_for
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from accounts.models import User
    from intake.models import Case
    from tests.live import benchmark_run_remove, child_database_url, gunicorn_command

    workdir = Path(tempfile.mkdtemp(prefix="bench-upload-cpu-"))
    block = memoryview(os.urandom(CHUNK))
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    gunicorn: subprocess.Popen[bytes] | None = None
    sink: subprocess.Popen[bytes] | None = None
    try:
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        with schema_context("neuro"):
            case = Case.objects.create(
                owner=User.objects.get(email="patient@neuro.example.com"), consented_at=timezone.now()
            )
        port = free_port()
        profile_base = str(workdir / "worker")
        env = dict(
            os.environ,
            DATABASE_URL=child_database_url(),
            PLATFORM_PORT=str(port),
            PYTHONUNBUFFERED="1",
            BENCH_PROFILE_OUTPUT=profile_base if args.profile else "",
        )
        command = gunicorn_command(port)  # as ./sr run starts it (config/launcher.py)
        if args.profile:
            command += ["--config", f"python:{Path(__file__).stem}"]
            env["PYTHONPATH"] = str(Path(__file__).resolve().parent)
        gunicorn = subprocess.Popen(command, cwd=BASE_DIR, env=env)
        wait_for(f"http://127.0.0.1:{port}/healthz", settings.PLATFORM_DOMAIN)
        server_pids = [gunicorn.pid, *gunicorn_worker_pids(gunicorn.pid, 2)]
        cookie = sign_in(port)
        sink_port = free_port()
        settings.STORAGE_FILESYSTEM_ROOT.mkdir(parents=True, exist_ok=True)
        sink = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--sink-server",
                str(sink_port),
                str(settings.STORAGE_FILESYSTEM_ROOT / "sink"),
            ],
            cwd=BASE_DIR,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", sink_port)).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the sink did not start"
                time.sleep(0.1)

        case_id = str(case.public_id)
        sizes = batch_sizes(args.uploads)
        # (name, bytes, requests, a function sending them to (port, clients) -> client timings)
        Scenario = Callable[[int, list[Client]], None]

        def one_patch(port_: int, clients: list[Client]) -> None:
            if port_ == port:
                clients[0].upload(case=case_id, size=size, first=0, chunk=size)
            else:
                clients[0].send("PATCH", "/sink", {}, size)

        def patches(port_: int, clients: list[Client]) -> None:
            if port_ == port:
                clients[0].upload(case=case_id, size=size, first=0, chunk=CHUNK)
            else:
                for start in range(0, size, CHUNK):
                    clients[0].send("PATCH", "/sink", {}, min(CHUNK, size - start))

        def batches(port_: int, clients: list[Client]) -> None:
            free = list(clients)
            lock = threading.Lock()

            def job(batch: int) -> Callable[[], None]:
                def send() -> None:
                    with lock:
                        client = free.pop()
                    try:
                        if port_ == port:
                            client.upload(case=case_id, size=batch, first=min(CHUNK, batch), chunk=CHUNK)
                        else:
                            client.send("POST", "/sink", {}, min(CHUNK, batch))
                            if batch > CHUNK:
                                client.send("PATCH", "/sink", {}, batch - CHUNK)
                    finally:
                        with lock:
                            free.append(client)

                return send

            in_parallel([job(batch) for batch in sizes], PARALLEL)

        scenarios: list[tuple[str, int, int, Scenario]] = [
            (f"a1. {args.size_mb} MB in one PATCH", size, 2, one_patch),
            (f"a2. {args.size_mb} MB in 8 MiB PATCHes", size, 1 + -(-size // CHUNK), patches),
            (
                f"b.  {args.uploads} uploads of 8-16 MiB, {PARALLEL} at a time",
                sum(sizes),
                sum(1 + (batch > CHUNK) for batch in sizes),
                batches,
            ),
        ]

        def heads(port_: int, clients: list[Client]) -> None:
            location = warm_up_locations[0] if port_ == port else "/sink"
            for _ in range(200):
                clients[0].send("HEAD", location, {}, 0)

        def options(port_: int, clients: list[Client]) -> None:
            for _ in range(200):
                clients[0].send("OPTIONS", "/intake/tus/" if port_ == port else "/sink", {}, 0)

        scenarios += [("h.  200 HEAD requests", 0, 200, heads), ("o.  200 OPTIONS requests", 0, 200, options)]
        wanted = args.only.split(",")
        scenarios = [scenario for scenario in scenarios if scenario[0].split(".")[0] in wanted]
        # A warm-up, so imports and caches are loaded before anything is measured.
        warm_up = [Client(port, cookie, block) for _ in range(PARALLEL)]
        warm_up_locations: list[str] = []
        in_parallel(
            [
                lambda client=client: warm_up_locations.append(  # type: ignore[misc]
                    client.upload(case=case_id, size=CHUNK + 10, first=CHUNK, chunk=CHUNK)
                )
                for client in warm_up
                for _ in range(2)
            ],
            1,
        )
        results = []
        for name, total, requests_, scenario in scenarios:
            best: dict[str, tuple[tuple[float, float], float, list[float]]] = {}
            for _ in range(args.rounds):
                for label, port_, pids in (("tus", port, server_pids), ("sink", sink_port, [sink.pid])):
                    clients = [Client(port_, cookie, block) for _ in range(PARALLEL)]
                    user, system = cpu_seconds(pids)
                    start = time.perf_counter()
                    scenario(port_, clients)
                    elapsed = time.perf_counter() - start
                    user_after, system_after = cpu_seconds(pids)
                    used = (user_after - user, system_after - system)
                    timings = [timing for client in clients for timing in client.timings]
                    if label not in best or sum(used) < sum(best[label][0]):
                        best[label] = (used, elapsed, timings)
                with schema_context("neuro"):
                    from storage.tenant import tenant_storage

                    tenant_storage().delete_prefix("uploads")
            results.append((name, total, requests_, best))

        lines = [
            "",
            f"server CPU-seconds per GB received (user + system, the lowest of {args.rounds} rounds); "
            f"gunicorn = master + 2 gthread workers; storage on {settings.STORAGE_FILESYSTEM_ROOT}",
        ]
        for name, total, requests_, best in results:
            (tus_user, tus_system), tus_wall, timings = best["tus"]
            (sink_user, sink_system), sink_wall, _ = best["sink"]
            tus_cpu, sink_cpu = tus_user + tus_system, sink_user + sink_system
            if not total:
                lines.append(
                    f"{name}: tus {tus_cpu / requests_ * 1000:.2f} ms CPU per request "
                    f"(user {tus_user / requests_ * 1000:.2f}), sink {sink_cpu / requests_ * 1000:.2f} ms"
                )
                continue
            gigabytes = total / 1e9
            lines.append(f"{name}: {total / MiB:.0f} MiB, {requests_} requests")
            lines.append(
                f"    tus   {tus_cpu / gigabytes:5.2f} CPU-s/GB (user {tus_user / gigabytes:4.2f}, system "
                f"{tus_system / gigabytes:4.2f}); wall {tus_wall:.2f} s, request p50 "
                f"{statistics.median(timings) * 1000:.0f} ms, p90 {percentile(timings, 0.9) * 1000:.0f} ms"
            )
            lines.append(
                f"    sink  {sink_cpu / gigabytes:5.2f} CPU-s/GB (user {sink_user / gigabytes:4.2f}, system "
                f"{sink_system / gigabytes:4.2f}); wall {sink_wall:.2f} s"
            )
            lines.append(
                f"    tus - sink: {(tus_cpu - sink_cpu) / gigabytes:5.2f} CPU-s/GB, "
                f"{(tus_cpu - sink_cpu) / requests_ * 1000:.1f} ms CPU per request"
            )
        print("\n".join(lines))
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
        if args.profile:
            import pstats

            files = sorted(str(path) for path in workdir.glob("worker.*.prof"))
            if files:
                with open(args.profile, "w") as out:
                    stats = pstats.Stats(*files, stream=out)
                    stats.sort_stats("tottime").print_stats(45)
                    stats.sort_stats("cumulative").print_stats(60)
                stats.dump_stats(f"{args.profile}.prof")  # for pstats' browser: python -m pstats
                print(f"profile written to {args.profile}")
        if args.tmpfs:
            shutil.rmtree(os.environ["SR_DATA_DIR"], ignore_errors=True)
        benchmark_run_remove(old_name, workdir)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--sink-server":
        sink_server(int(sys.argv[2]), sys.argv[3])
    else:
        main()
