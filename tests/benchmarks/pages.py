"""What the page benchmarks share (bench_case_page, bench_dashboard, bench_queue): a throw-away
database with the demo seeded, staff clients signed in, and one way to time a page.

Import it first thing in a benchmark script, with the script's name::

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.benchmarks.pages import bench_django_setup

    bench_django_setup("bench_queue")

``bench_django_setup`` sets the test settings and the run's name (``SR_TEST_RUN``: the throw-away
database is ``test_secondread_<name>``) and starts Django; the rest is imported after it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def bench_django_setup(name: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["SR_TEST_RUN"] = name
    import django

    django.setup()


@contextmanager
def demo_database() -> Iterator[None]:
    """A new database, migrated and seeded with the demo institutions; dropped afterwards.

    Django's test instrumentation (``setup_test_environment``: a signal and a copy of the context
    for every template rendered, widgets included) is left off, as in production: it added a
    few milliseconds of CPU to every page measured."""
    from django.core.management import call_command
    from django.db import connection

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", verbosity=0, stdout=quiet)
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def staff_client(email: str, host: str = "neuro.localhost") -> Any:
    """A test client signed in as ``email`` (second factor passed), its first page already asked:
    a session's first page does one-off work that no later page repeats."""
    from django.test import Client

    from tests.staff import staff_force_login

    client = Client(HTTP_HOST=host)
    staff_force_login(client, email)
    client.get("/workspace/")
    return client


def page_measure(client: Any, label: str, path: str, repeat: int) -> None:
    """Print the page's time to the complete response (median, p95 and the fastest run: on a
    shared machine the fastest is the one least slowed by others' work), this process's CPU time,
    its SQL statements and its size. ``BENCH_SHOW_QUERIES=1`` lists the last run's statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # warm up (templates, connection, caches)
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200, (label, response.status_code)
    p95 = sorted(times)[max(int(len(times) * 0.95) - 1, 0)]
    if os.environ.get("BENCH_SHOW_QUERIES"):
        for query in captured.captured_queries:
            print(f"   {float(query['time']) * 1000:7.1f} ms  {query['sql'][:150]}")
    print(
        f"{label:<40} median {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms   "
        f"min {min(times):6.1f} ms   (CPU {statistics.median(cpu):5.1f} ms)   "
        f"queries {len(captured.captured_queries)}   {len(response.content) // 1024} KiB"
    )
