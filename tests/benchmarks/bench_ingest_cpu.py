"""Worker CPU of a folder drop as the browser sends it: the files packed into uncompressed tars of
2, 4, 8 then 16 MiB (the wizard's planner, frontend/src/intake/upload.js), each a tus upload
that is RECEIVED, then ingested by its task (``upload_ingest_run``, as the Celery task calls it).

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_ingest_cpu.py [--ct 600] [--cd 0] [--repeat 3] \
        [--files /tmp/bench-ingest-files] [--profile /tmp/ingest.prof] [--arrival one|all] \\
        [--pack tar|zip] [--split]

The machine is shared by browser, web, worker and database (2 cores): every CPU-second the worker
spends is wall time the patient waits. So this measures CPU, not wall time: the worker's process
CPU (``time.process_time``: every thread, the storage threads included) for the ingest tasks,
and separately for the preview tasks they queue; and the CPU the database's backend spent
serving this process (psutil on its pid). Best of ``--repeat`` rounds (least disturbed).

``--arrival one`` (the default): each batch's upload row is made RECEIVED just before its task
runs, as when the batches arrive one after another and each task claims its own; ``all``: every
row is RECEIVED first and the tasks then run (the first claims them all; the rest find nothing).
Storing the uploads' bytes and making their rows is the web's work and is not counted.

``--celery`` runs the tasks in a real Celery worker instead (solo pool, so that the task runs in
the process whose CPU is read): what the task costs with Celery's own work and the switch to
the institution's schema, and the preview tasks it queues; the worker's idle CPU is left out.

``--profile PATH`` runs one more round under cProfile and prints the top functions (by own
time and by cumulative time); the file can be read with ``python -m pstats PATH``.

The files are bench_ingest.py's: CT slices 512 x 512, 16-bit, uncompressed, from the real CT
slice pydicom ships; ``--cd N`` adds a CD tree of N images in 10 series with a DICOMDIR (sent
on its own, as the wizard does).
"""

# long module: a stand-alone script run by hand; its fixtures, its in-process and Celery rounds
# and its per-step and profiled passes measure the same drop and read best side by side.

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))
RUN_ID = "bench_ingest_cpu"
MiB = 1024 * 1024
# The wizard's batch sizes: small first (checking starts at once), then 16 MiB.
BATCH_BYTES = [2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB]
BATCH_FILES = 2000


def batches_plan(paths: list[Path]) -> list[list[Path]]:
    """The wizard's planner (upload.js planAnew) for DICOM images of one folder."""
    units: list[list[Path]] = []
    made = 0
    batch: list[Path] = []
    size = 0
    for path in paths:
        length = path.stat().st_size
        if length >= BATCH_BYTES[-1]:
            units.append([path])
            continue
        limit = BATCH_BYTES[min(made, len(BATCH_BYTES) - 1)]
        if batch and (size + length > limit or len(batch) >= BATCH_FILES):
            made += len(batch) > 1
            units.append(batch)
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        units.append(batch)
    return units


def batches_write(units: list[list[Path]], root: Path, target: Path, pack: str) -> list[tuple[Path, str]]:
    """Each unit as an uncompressed tar (the wizard's folder batches, tarbatch.js) or zip (before
    it), or alone the file itself; returns (path, upload name) pairs."""
    target.mkdir(parents=True, exist_ok=True)
    made = []
    for number, unit in enumerate(units, 1):
        if len(unit) == 1:
            made.append((unit[0], str(unit[0].relative_to(root))))
            continue
        name = f"batch-{number:04d}.{pack}"
        if pack == "tar":
            with tarfile.open(target / name, "w", format=tarfile.PAX_FORMAT) as archive:
                for path in unit:
                    archive.add(path, str(path.relative_to(root)))
        else:
            with zipfile.ZipFile(target / name, "w", zipfile.ZIP_STORED) as archive:
                for path in unit:
                    archive.write(path, str(path.relative_to(root)))
        made.append((target / name, name))
    return made


@dataclass
class Round:
    ingest_cpu: float = 0.0
    main_thread_cpu: float = 0.0
    system_cpu: float = 0.0
    preview_cpu: float = 0.0
    db_cpu: float = 0.0
    wall: float = 0.0
    tasks: int = 0
    empty_tasks: int = 0

    def line(self, name: str, files: int) -> str:
        return (
            f"{name:<28} {files:>5} files  worker ingest {self.ingest_cpu:6.2f} CPU-s "
            f"({1000 * self.ingest_cpu / files:5.2f} ms/file; main thread {self.main_thread_cpu:5.2f}, "
            f"kernel {self.system_cpu:5.2f})  previews {self.preview_cpu:5.2f}  "
            f"db backend {self.db_cpu:5.2f}  wall {self.wall:6.2f} s  tasks {self.tasks} "
            f"({self.empty_tasks} found nothing)"
        )


def steps_timed() -> dict[str, float]:
    """Wrap the ingest's steps so that each adds its main-thread CPU to the returned dict."""
    import imaging.ingest.pipeline as pipeline
    import imaging.ingest.pipeline.unpack as unpack
    from imaging.ingest.pipeline.index import IndexSteps
    from imaging.ingest.pipeline.store import BackgroundSaver

    spent: dict[str, float] = {}

    def timed(owner: Any, attribute: str, step: str) -> None:
        original = getattr(owner, attribute)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[step] = spent.get(step, 0.0) + time.thread_time() - start

        setattr(owner, attribute, wrapper)

    timed(unpack, "header_read", "DICOM header parse (header_read)")
    timed(unpack, "entry_read", "archive entry read (entry_read; a zip checks its CRC)")
    timed(IndexSteps, "flush", "database writes of a batch (flush)")
    timed(BackgroundSaver, "submit", "handing bytes to the storage threads")
    timed(pipeline, "imaging_uploads_claim", "claim")
    timed(pipeline, "uploads_finish", "uploads ended DONE, raw bytes deleted")
    timed(pipeline, "series_preview_schedule", "preview scheduling")
    timed(pipeline, "case_patient_consistency_check", "patient consistency check")
    timed(pipeline, "case_identity_refresh", "identity refresh")
    timed(pipeline, "case_reports_match", "reports matched")
    timed(pipeline, "upload_ingest_run", "whole task (upload_ingest_run)")
    return spent


PREVIEW_WAIT = 7.0


def worker_idle_rate(worker: Any) -> float:
    """CPU-seconds per second the idle worker spends (its event loop, the broker's heartbeats)."""
    start = worker.cpu_times()
    time.sleep(2)
    end = worker.cpu_times()
    return float(end.user + end.system - start.user - start.system) / 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ct", type=int, default=600, help="slices in the CT series")
    parser.add_argument("--cd", type=int, default=0, help="images on the CD (0: no CD)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=Path, help="keep the generated files here for the next run")
    parser.add_argument("--profile", type=Path, help="profile one more round into this file")
    parser.add_argument("--arrival", choices=("one", "all"), default="one")
    parser.add_argument(
        "--pack", choices=("tar", "zip"), default="tar", help="folder batches as the wizard sends them (tar)"
    )
    parser.add_argument("--top", type=int, default=30, help="functions printed from the profile")
    parser.add_argument(
        "--celery", action="store_true", help="run the tasks in a real Celery worker (solo pool)"
    )
    parser.add_argument(
        "--celery-profile", type=Path, help="with --celery: profile the worker into this file"
    )
    parser.add_argument(
        "--split", action="store_true", help="also print the main thread's CPU per step (one more round)"
    )
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["SR_TEST_RUN"] = RUN_ID
    import django

    django.setup()
    import psutil
    from bench_ingest import ct_template, write_cd, write_series
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment
    from django_tenants.utils import schema_context
    from pydicom.uid import generate_uid

    import imaging.ingest.pipeline as pipeline
    from accounts.models import User
    from imaging.ingest.pipeline import upload_ingest_run
    from imaging.ingest.preview import series_preview_ensure
    from imaging.models import Instance, Series, Upload
    from intake.models import Case
    from storage.tenant import tenant_storage

    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-cpu-"))
    worker: subprocess.Popen[bytes] | None = None
    files = args.files or workdir
    shapes: list[tuple[str, Path, list[Path]]] = []
    ct_folder = files / f"ct-{args.ct}"
    if args.ct:
        if not (ct_folder / "made").exists():
            print(f"making {args.ct} CT slices in {ct_folder} ...", flush=True)
            shutil.rmtree(ct_folder, ignore_errors=True)
            write_series(
                ct_folder / "CT", args.ct, study_uid=generate_uid(), series_number=1, template=ct_template()
            )
            (ct_folder / "made").touch()
        shapes.append(("CT folder drop", ct_folder, sorted((ct_folder / "CT").iterdir())))
    cd_folder = files / f"cd-{args.cd}"
    if args.cd:
        if not (cd_folder / "made").exists():
            print(f"making a {args.cd}-image CD in {cd_folder} ...", flush=True)
            shutil.rmtree(cd_folder, ignore_errors=True)
            write_cd(cd_folder / "disc", args.cd, 10)
            (cd_folder / "made").touch()
        shapes.append(("CD folder drop", cd_folder / "disc", sorted((cd_folder / "disc").rglob("*"))))

    plans = []
    for name, root, paths in shapes:
        paths = [path for path in paths if path.is_file() and path.name != "made"]
        index = [path for path in paths if path.name.upper() == "DICOMDIR"]
        pictures = [path for path in paths if path.name.upper() != "DICOMDIR"]
        units = [[path] for path in index] + batches_plan(pictures)
        sent = batches_write(units, root, workdir / name.replace(" ", "-"), args.pack)
        megabytes = sum(path.stat().st_size for path in pictures) / MiB
        sizes = sorted(path.stat().st_size / MiB for path, _ in sent)
        print(
            f"{name}: {len(pictures)} images ({megabytes:.0f} MB) in {len(sent)} uploads "
            f"({sizes[0]:.1f}-{sizes[-1]:.1f} MiB)",
            flush=True,
        )
        plans.append((name, len(pictures), sent))

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        with schema_context("neuro"):
            owner = User.objects.get(email="patient@neuro.example.com")
            storage = tenant_storage()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = psutil.Process(cursor.fetchone()[0])

            def backend_cpu() -> float:
                times = backend.cpu_times()
                return float(times.user + times.system)

            postmaster = psutil.Process(backend.ppid())

            def backends_cpu() -> float:
                """Ours, and every backend that ended (the worker's, one per task if it
                reconnects; but also any other user's of this server)."""
                times = postmaster.cpu_times()
                return backend_cpu() + float(times.children_user + times.children_system)

            def stored(case: Case, path: Path) -> tuple[str, int]:
                key = f"uploads/{case.public_id}/{generate_uid()[-20:]}"
                with open(path, "rb") as source:
                    return key, storage.save(key, source)

            def upload_row(case: Case, key: str, size: int, name: str) -> Upload:
                return Upload.objects.create(
                    case=case,
                    owner=owner,
                    status=Upload.Status.RECEIVED,
                    relative_path=name,
                    metadata={"filename": name},
                    length=size,
                    offset=size,
                    storage_key=key,
                )

            def one_round(
                sent: list[tuple[Path, str]], images: int, around: Callable[[Callable[[], Any]], Any]
            ) -> Round:
                result = Round()
                case = Case.objects.create(owner=owner)
                keys = [(stored(case, path), name) for path, name in sent]  # the tus server's work
                wall = time.perf_counter()
                pending: list[int] = []
                if args.arrival == "all":
                    pending = [upload_row(case, key, size, name).pk for (key, size), name in keys]
                for (key, size), name in keys:
                    if args.arrival == "one":
                        pending = [upload_row(case, key, size, name).pk]
                    for upload_id in pending:
                        db, cpu, main = backend_cpu(), time.process_time(), time.thread_time()
                        system = resource.getrusage(resource.RUSAGE_SELF).ru_stime
                        outcome = around(functools.partial(pipeline.upload_ingest_run, upload_id=upload_id))
                        result.ingest_cpu += time.process_time() - cpu
                        result.main_thread_cpu += time.thread_time() - main
                        result.system_cpu += resource.getrusage(resource.RUSAGE_SELF).ru_stime - system
                        result.db_cpu += backend_cpu() - db
                        result.tasks += 1
                        result.empty_tasks += outcome is None
                    pending = []
                db, cpu = backend_cpu(), time.process_time()
                for series_id in Series.objects.filter(study__case=case).values_list("pk", flat=True):
                    around(functools.partial(series_preview_ensure, series_id=series_id))
                result.preview_cpu = time.process_time() - cpu
                result.db_cpu += backend_cpu() - db
                result.wall = time.perf_counter() - wall
                kept = Instance.objects.filter(series__study__case=case).count()
                assert kept == images, (kept, images)
                assert not Upload.objects.filter(case=case).exclude(status=Upload.Status.DONE).exists()
                return result

            def plain(work: Callable[[], Any]) -> Any:
                return work()

            def worker_round(sent: list[tuple[Path, str]], images: int, worker: psutil.Process) -> Round:
                """The same through a real Celery worker (solo pool: the task runs in the worker
                process, whose CPU is read): each batch's task published as the tus server
                publishes it, the next batch once it is done; then its preview tasks (queued
                with a countdown) are waited for. The worker's idle CPU over as long is left out.
                The database's CPU here counts the backends that ended meanwhile (a worker that
                reconnects for every task ends one per task), whoever's they were."""
                from imaging.tasks import upload_ingest

                result = Round()
                case = Case.objects.create(owner=owner)
                keys = [(stored(case, path), name) for path, name in sent]
                wall = time.perf_counter()
                before = worker.cpu_times()
                db = backends_cpu()
                for (key, size), name in keys:
                    upload = upload_row(case, key, size, name)
                    upload_ingest.apply_async((upload.pk,))
                    while Upload.objects.filter(pk=upload.pk, status=Upload.Status.DONE).count() == 0:
                        time.sleep(0.005)
                    result.tasks += 1
                ingested = worker.cpu_times()
                ingest_wall = time.perf_counter() - wall
                time.sleep(PREVIEW_WAIT)  # the preview tasks' countdown, then the drawing
                after = worker.cpu_times()
                idle = worker_idle_rate(worker)
                result.ingest_cpu = ingested.user + ingested.system - before.user - before.system
                result.ingest_cpu -= idle * ingest_wall
                result.system_cpu = ingested.system - before.system
                result.preview_cpu = after.user + after.system - ingested.user - ingested.system
                result.preview_cpu -= idle * PREVIEW_WAIT
                result.db_cpu = backends_cpu() - db
                result.wall = ingest_wall
                kept = Instance.objects.filter(series__study__case=case).count()
                assert kept == images, (kept, images)
                return result

            # Warm-up: imports, decoders, connections.
            warm = Case.objects.create(owner=owner)
            (key, size), name = stored(warm, plans[0][2][0][0]), plans[0][2][0][1]
            upload_ingest_run(upload_id=upload_row(warm, key, size, name).pk, previews_now=True)

            if args.celery:
                from tests.live import child_env

                # With --celery-profile, the worker runs under cProfile (wall clock: its idle
                # waits show as the event loop's; the tasks' own functions are what to read).
                profiled = ["-m", "cProfile", "-o", str(args.celery_profile)] if args.celery_profile else []
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        *profiled,
                        str(Path(sys.executable).parent / "celery"),
                        *("-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"),
                        *(
                            "--queues",
                            settings.CELERY_TASK_DEFAULT_QUEUE,
                            "--hostname",
                            f"bench-{os.getpid()}@%h",
                        ),
                        *("--without-mingle", "--without-gossip"),
                    ],
                    cwd=BASE_DIR,
                    env=child_env(),
                )
                time.sleep(8)  # started and connected
            for name, images, sent in plans:
                if worker is not None:
                    rounds = [
                        worker_round(sent, images, psutil.Process(worker.pid)) for _ in range(args.repeat)
                    ]
                    for done in rounds:
                        print("  " + done.line(f"{name} (Celery worker)", images), flush=True)
                    best = min(rounds, key=lambda r: r.ingest_cpu)
                    print(best.line(f"{name} (Celery worker), best", images), flush=True)
                    continue
                rounds = []
                for _ in range(args.repeat):
                    rounds.append(one_round(sent, images, plain))
                    print("  " + rounds[-1].line(name, images), flush=True)
                best = min(rounds, key=lambda r: r.ingest_cpu)
                print(best.line(f"{name}, best", images), flush=True)
                if args.split:
                    spent = steps_timed()
                    one_round(sent, images, plain)
                    print(f"main thread's CPU per step, {name} (one more round):")
                    for step, seconds in sorted(spent.items(), key=lambda item: -item[1]):
                        print(f"  {step:<44} {seconds:6.3f} s")
                if args.profile:
                    # The main thread's CPU time, not the wall clock: the storage threads'
                    # writes and the database's answers would otherwise be charged to
                    # whatever the main thread was doing while it waited for them.
                    profiler = cProfile.Profile(time.thread_time)

                    one_round(sent, images, profiler.runcall)
                    path = args.profile.with_name(
                        f"{args.profile.stem}-{name.split()[0].lower()}{args.profile.suffix}"
                    )
                    profiler.dump_stats(path)
                    out = io.StringIO()
                    stats = pstats.Stats(profiler, stream=out).strip_dirs()
                    stats.sort_stats("tottime").print_stats(args.top)
                    stats.sort_stats("cumulative").print_stats(args.top)
                    print(
                        f"profile of {name} (main thread's CPU only; saved to {path}):\n{out.getvalue()}",
                        flush=True,
                    )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        with schema_context("neuro"):
            for prefix in ("uploads", "dicom", "previews"):
                tenant_storage().delete_prefix(prefix)
        shutil.rmtree(settings.STORAGE_FILESYSTEM_ROOT, ignore_errors=True)
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            import redis

            redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception as error:
            print(f"could not delete the Celery queue: {type(error).__name__}")


if __name__ == "__main__":
    main()
