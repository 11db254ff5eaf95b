"""Many institutions on one deployment: what grows with their number.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_tenants.py [--sizes 100,1000]

It creates its own throw-away database (``test_secondread_bench_tenants``) and, for each size in
turn, creates institutions up to that number through the real go-live (the wizard's services:
application, verified email, web address, steps, then ``institution_go_live``, what the Celery
task runs), gives each a patient, and prints:

- go-live time (mean and p95 of the institutions added at this size);
- database bytes per institution;
- ``migrate_schemas`` with nothing to do, and with one real migration (a column added to a table
  of every institution schema), each as a deploy runs it (a separate process);
- memory of the PostgreSQL backends (private RSS, from /proc, so PostgreSQL must run on this
  machine) while one connection serves a signed-in page on every institution's host in turn;
  with the default recycling (``DB_CONN_MAX_SCHEMAS``) and without it;
- p50 / p95 of a tenant page (a patient's case list, whole Django stack) and of the operator
  console; the usage sweep's time;
- the ratios between sizes.

The temporary migration files it writes (``review/migrations/9*_bench_*.py``) are removed at
the end, and the database dropped.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ["SR_TEST_RUN"] = "bench_tenants"

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from tenants.schema import activate_public  # noqa: E402

BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "bench-Passphrase-42"
MIGRATIONS_DIR = BASE_DIR / "review" / "migrations"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _database_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return int(cursor.fetchone()[0])


_LETTERS = "abcdefghjknpqstuxyz"  # none a look-alike of another (no i/l/o/m/r/v/w)


def _distinct_code(number: int) -> str:
    """Letters for ``number`` that no other number's code is a look-alike of (the onboarding
    refuses names and addresses within two edits of an existing one): its four base-19 digits
    written three times, each time in another order and alphabet, so that codes differ in at
    least three places and no code is a rotation of another (checked for the first 1,200)."""
    digits = []
    for _ in range(4):
        number, digit = divmod(number, len(_LETTERS))
        digits.append(digit)
    first = "".join(_LETTERS[d] for d in digits)
    second = "".join(_LETTERS[(d * 7 + 3) % 19] for d in reversed(digits))
    third = "".join(_LETTERS[(d * 11 + 5) % 19] for d in (digits[2], digits[0], digits[3], digits[1]))
    return first + second + third


def institution_go_live_via_wizard(number: int) -> tuple[float, str, str]:
    """One institution through the wizard's services and the go-live; returns (seconds, host,
    schema)."""
    from accounts.models import User
    from institutions.onboarding import (
        STEP_NAMES,
        onboarding_start,
        onboarding_subdomain_set,
        onboarding_verify,
    )
    from institutions.provisioning import institution_go_live
    from tenants.models import Onboarding
    from tenants.selectors import institution_primary_domain

    code = _distinct_code(number)
    slug = f"bench-{code}"
    email = f"admin-{number:05d}@bench.example.org"
    onboarding_start(
        institution_name=f"Bench Hospital {code.title()}",
        full_name="Bench Admin",
        email=email,
        password=PASSWORD,
    )
    onboarding = onboarding_verify(
        onboarding=Onboarding.objects.filter(email=email).latest("id"), password=PASSWORD
    )
    institution = onboarding_subdomain_set(onboarding=onboarding, slug=slug)
    Onboarding.objects.filter(pk=onboarding.pk).update(
        completed_steps=list(STEP_NAMES[:-1]), state=Onboarding.State.QUEUED
    )
    started = time.perf_counter()
    assert institution_go_live(onboarding_id=onboarding.pk), "go-live failed"
    seconds = time.perf_counter() - started
    institution.refresh_from_db()
    with schema_context(institution.schema_name):
        User.objects.create_user(f"patient@{slug}.example.org", PASSWORD, full_name="Bench Patient")
    host = institution_primary_domain(institution=institution)
    assert host
    return seconds, host, institution.schema_name


def _migrate(env: dict[str, str], command: str = "migrate_schemas") -> tuple[float, float]:
    """Run migrate_schemas (or the template's migration) as a deploy does; return (wall seconds,
    CPU seconds of the process: on a shared machine the wall time mostly measures waiting for a
    core)."""
    arguments = ["migrate_schemas", "--tenant", "--noinput"] if command == "migrate_schemas" else [command]
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *arguments, "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return time.perf_counter() - started, cpu


def _bench_migration_write(size: int, previous: str) -> str:
    name = f"9{size:06d}_bench_column"
    (MIGRATIONS_DIR / f"{name}.py").write_text(
        f'''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("review", "{previous}")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE review_reviewsettings ADD COLUMN bench_{size} boolean NULL",
            "ALTER TABLE review_reviewsettings DROP COLUMN bench_{size}",
        )
    ]
'''
    )
    return name


def _rss_anon_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _signed_in(host: str, schema: str, email: str) -> Client:
    from accounts.models import User

    client = Client(HTTP_HOST=host)
    with schema_context(schema):
        client.force_login(User.objects.get(email=email))
    activate_public()
    return client


def backend_memory_sweep(sites: list[tuple[str, str]], max_schemas: int) -> tuple[float, int]:
    """Serve a signed-in page on every host on this thread's one connection (recycled after
    ``max_schemas`` schemas; 0 never); return (peak private RSS of a backend in MB, backends)."""
    settings.DB_CONN_MAX_SCHEMAS = max_schemas
    connection.close()
    peak = 0
    backends = set()
    for host, schema in sites:
        client = _signed_in(host, schema, f"patient@{host.split('.')[0]}.example.org")
        assert client.get("/cases/").status_code == 200
        if connection.connection is not None:
            pid = connection.connection.info.backend_pid
            backends.add(pid)
            peak = max(peak, _rss_anon_kib(pid) or 0)
        connection.close_if_unusable_or_obsolete()
    connection.close()
    return peak / 1024, len(backends)


def page_times(sites: list[tuple[str, str]], requests: int) -> tuple[float, float]:
    rng = random.Random(7)  # noqa: S311 (a reproducible order of requests)
    clients = {}
    times = []
    for _ in range(requests):
        host, schema = rng.choice(sites)
        if host not in clients:
            clients[host] = _signed_in(host, schema, f"patient@{host.split('.')[0]}.example.org")
        started = time.perf_counter()
        response = clients[host].get("/cases/")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return _percentile(times, 0.5) * 1000, _percentile(times, 0.95) * 1000


def console_times(requests: int) -> tuple[float, float]:
    from tests.staff import staff_force_login

    operator = Client(HTTP_HOST=settings.PLATFORM_DOMAIN)
    staff_force_login(operator, "operator@bench.example.org")  # a session that passed the second factor
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = operator.get("/operators/")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return _percentile(times, 0.5) * 1000, _percentile(times, 0.95) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--page-requests", type=int, default=300)
    parser.add_argument(
        "--max-schemas", type=int, default=100, help="DB_CONN_MAX_SCHEMAS for the backend memory sweep"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    from allauth.account.models import EmailAddress
    from django.core import mail

    from accounts.models import User
    from institutions.provisioning import tenant_template_ensure
    from institutions.usage import institution_usage_refresh_all
    from tenants.services import public_tenant_ensure
    from tests.live import child_env

    setup_test_environment()
    mail.outbox = []
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    written: list[Path] = []
    results: dict[int, dict[str, float]] = {}
    try:
        public_tenant_ensure()
        tenant_template_ensure()
        operator = User.objects.create_user(
            "operator@bench.example.org",
            PASSWORD,
            full_name="Bench Operator",
            is_operator=True,
            is_staff=True,
        )
        EmailAddress.objects.create(user=operator, email=operator.email, verified=True, primary=True)
        env = child_env()
        previous_migration = sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py"))[-1]
        sites: list[tuple[str, str]] = []
        for size in sizes:
            before = _database_bytes()
            added = size - len(sites)
            go_lives = []
            started = time.perf_counter()
            while len(sites) < size:
                seconds, host, schema = institution_go_live_via_wizard(len(sites) + 1)
                go_lives.append(seconds)
                sites.append((host, schema))
                mail.outbox = []
                if len(sites) % 50 == 0:
                    print(f"  {len(sites)} institutions ({time.perf_counter() - started:.0f} s)", flush=True)
            bytes_each = (_database_bytes() - before) / max(1, added)
            connection.close()

            noop, noop_cpu = _migrate(env)
            name = _bench_migration_write(size, previous_migration)
            written.append(MIGRATIONS_DIR / f"{name}.py")
            previous_migration = name
            real, real_cpu = _migrate(env)
            # Then the template, as the deploy does (deploy/secondread.sh), in a process of its
            # own: this one cached the migrations on disk before the new file was written.
            template, template_cpu = _migrate(env, "tenant_template")
            real, real_cpu = real + template, real_cpu + template_cpu
            connection.close()

            recycled_mb, recycled_backends = backend_memory_sweep(sites, args.max_schemas)
            unbounded_mb, _ = backend_memory_sweep(sites, 0)
            settings.DB_CONN_MAX_SCHEMAS = 100

            refresh_started = time.perf_counter()
            institution_usage_refresh_all()
            refresh = time.perf_counter() - refresh_started
            page_p50, page_p95 = page_times(sites, args.page_requests)
            console_p50, console_p95 = console_times(30)

            results[size] = {
                "go_live_mean": statistics.mean(go_lives),
                "go_live_p95": _percentile(go_lives, 0.95),
                "bytes_each": bytes_each,
                "noop": noop,
                "real": real,
                "noop_cpu": noop_cpu,
                "real_cpu": real_cpu,
                "backend_recycled_mb": recycled_mb,
                "backend_unbounded_mb": unbounded_mb,
                "usage_refresh": refresh,
                "page_p50": page_p50,
                "page_p95": page_p95,
                "console_p50": console_p50,
                "console_p95": console_p95,
            }
            print(
                f"\n{size} institutions\n"
                f"  go-live: mean {results[size]['go_live_mean']:.2f} s, "
                f"p95 {results[size]['go_live_p95']:.2f} s ({added} added)\n"
                f"  database: {bytes_each / 1e6:.2f} MB per institution, "
                f"{_database_bytes() / 1e9:.2f} GB in all\n"
                f"  migrate_schemas, nothing to do: {noop:.1f} s ({noop_cpu:.1f} s CPU); "
                f"one added column in every schema: {real:.1f} s ({real_cpu:.1f} s CPU, "
                f"its parallel processes included)\n"
                f"  backend private memory after a page on every host: {recycled_mb:.0f} MB with "
                f"DB_CONN_MAX_SCHEMAS={args.max_schemas} ({recycled_backends} backends), "
                f"{unbounded_mb:.0f} MB with one connection for all\n"
                f"  usage sweep (every institution): {refresh:.1f} s\n"
                f"  tenant page (patient's cases): p50 {page_p50:.1f} ms, p95 {page_p95:.1f} ms\n"
                f"  operator console: p50 {console_p50:.1f} ms, p95 {console_p95:.1f} ms",
                flush=True,
            )
        if len(sizes) > 1:
            first = sizes[0]
            print(f"\nratios to {first} institutions")
            for size in sizes[1:]:
                ratios = ", ".join(
                    f"{key} {results[size][key] / results[first][key]:.2f}x"
                    for key in results[size]
                    if results[first][key]
                )
                print(f"  {size}: {ratios}")
    finally:
        for path in written:
            path.unlink(missing_ok=True)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
