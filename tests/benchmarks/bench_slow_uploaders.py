"""Slow uploaders must not starve anyone: 16 patients sending tus chunks at ~340 KiB/s and 20
sending as fast as loopback allows, while another institution's landing page and the uploaders'
own status pages are timed.

Run by hand (prints numbers, asserts nothing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/secondread REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python tests/benchmarks/bench_slow_uploaders.py [--seconds 30] [--slow 16] [--fast 20]

It creates its own throw-away database, seeds the demo, makes one draft case per uploader for
patient@neuro, and starts gunicorn as ./sr run does (2 workers x 8 threads), and a second one
for uploads as ``deploy/secondread.sh uploads`` runs it (the same, at niceness 10). Then, in turn:

1. straight to gunicorn (what ./sr run serves; no proxy);
2. through Caddy with request buffering (``request_buffers``; spelled ``buffer_requests`` +
   ``max_buffer_size`` by Caddy before 2.6.4), one gunicorn for everything;
3. through Caddy as deploy/caddy/Caddyfile routes it: ``/intake/tus/`` to the uploads gunicorn,
   the rest to web's.

Each slow uploader sends 8 MiB PATCH bodies (the wizard's chunk) at ``--slow-kib`` KiB/s over a
raw socket; each fast one creates uploads and sends their 8 MiB chunks at full speed. Probes
fetch cancer.localhost's landing page and one uploader's status JSON every 100 ms.

Targets (issue 13): landing page p95 < 100 ms, uploaders' status pages p95 < 250 ms, behind the
production proxy. The machine is shared (2 cores, other engineers' work): numbers are
pessimistic; the load generator itself runs on the same cores.
"""

# long module: a stand-alone script run by hand; its servers (two gunicorns, two Caddies), its
# load and its probes are read and changed together.

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))
RUN_ID = "bench_slow_uploaders"
MiB = 1024 * 1024
CHUNK = 8 * MiB
HOST = "neuro.localhost"
OTHER_HOST = "cancer.localhost"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, host: str, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", headers={"Host": host}, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} did not answer")


def caddy_buffering() -> str:
    """deploy/caddy/Caddyfile's request buffering, as this Caddy spells it."""
    version = subprocess.run(["caddy", "version"], capture_output=True, text=True).stdout
    match = re.search(r"\bv?2\.(\d+)\.(\d+)", version)  # "v2.7.6 h1:…", or Debian's "2.6.2"
    minor, patch = (int(match.group(1)), int(match.group(2))) if match else (99, 0)
    if (minor, patch) >= (6, 4):
        return "request_buffers 9MiB"
    return "buffer_requests\n\t\tmax_buffer_size 9MiB"


def start_caddy(
    workdir: Path, listen: int, upstream: int, uploads: int | None = None, name: str = "Caddyfile"
) -> subprocess.Popen[bytes]:
    if not shutil.which("caddy"):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "caddy"], check=True)
        else:
            raise SystemExit("This benchmark needs Caddy (apt-get install caddy).")
    config = workdir / name

    def proxy(port: int) -> str:
        return f"""reverse_proxy 127.0.0.1:{port} {{
\t\t{caddy_buffering()}
\t\ttransport http {{
\t\t\tread_timeout 10m
\t\t\twrite_timeout 10m
\t\t}}
\t}}"""

    routes = (
        f"handle /intake/tus/* {{\n\t{proxy(uploads)}\n\t}}\n\thandle {{\n\t{proxy(upstream)}\n\t}}"
        if uploads
        else proxy(upstream)
    )
    config.write_text(
        f"""{{
\tadmin off
\tauto_https off
\tservers {{
\t\ttimeouts {{
\t\t\tread_body 10m
\t\t}}
\t}}
}}
http://:{listen} {{
\t{routes}
}}
"""
    )
    process = subprocess.Popen(
        ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, HOME=str(workdir), XDG_DATA_HOME=str(workdir), XDG_CONFIG_HOME=str(workdir)),
    )
    wait_for(listen, OTHER_HOST)
    return process


class Load:
    """Slow and fast uploaders plus probes against one port, for a fixed time."""

    def __init__(self, port: int, cookie: str, cases: list[str], slow: int, fast: int, slow_kib: int) -> None:
        self.port = port
        self.cookie = cookie
        self.cases = cases
        self.slow, self.fast, self.slow_kib = slow, fast, slow_kib
        self.stop = threading.Event()
        self.landing: list[float] = []
        self.status: list[float] = []
        self.chunks = {"slow": 0, "fast": 0}
        self.errors: dict[str, int] = {}
        self.body = os.urandom(CHUNK)

    def _error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def _create(self, case: str) -> str | None:
        import base64

        metadata = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}"
            for key, value in {"case": case, "kind": "imaging", "filename": "IM0001"}.items()
        )
        head = (
            f"POST /intake/tus/ HTTP/1.1\r\nHost: {HOST}\r\nCookie: {self.cookie}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Length: {CHUNK}\r\nUpload-Metadata: {metadata}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        answer = self._exchange(head.encode(), b"", rate=0)
        match = re.search(rb"Location: (\S+)", answer)
        if not answer.startswith(b"HTTP/1.1 201") or not match:
            self._error(f"create {answer[:12]!r}")
            return None
        return match.group(1).decode()

    def _exchange(self, head: bytes, body: bytes, rate: int) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=120) as connection:
            connection.sendall(head)
            if rate:
                piece = max(1, rate // 10)
                for start in range(0, len(body), piece):
                    if self.stop.is_set():
                        return b""
                    connection.sendall(body[start : start + piece])
                    time.sleep(0.1)
            elif body:
                connection.sendall(body)
            answer = b""
            while data := connection.recv(65536):
                answer += data
            return answer

    def uploader(self, case: str, rate: int, kind: str) -> None:
        while not self.stop.is_set():
            location = self._create(case)
            if location is None:
                time.sleep(0.5)
                continue
            head = (
                f"PATCH {location} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {self.cookie}\r\n"
                "Tus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {CHUNK}\r\nConnection: close\r\n\r\n"
            )
            try:
                answer = self._exchange(head.encode(), self.body, rate=rate)
            except OSError:
                self._error("patch connection")
                continue
            if answer.startswith(b"HTTP/1.1 204"):
                self.chunks[kind] += 1
            elif answer:
                self._error(f"patch {answer[:12]!r}")

    def probe(self, path: str, host: str, into: list[float], cookie: str = "") -> None:
        import requests

        session = requests.Session()
        headers = {"Host": host}
        if cookie:
            headers["Cookie"] = cookie
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                response = session.get(f"http://127.0.0.1:{self.port}{path}", headers=headers, timeout=60)
                if response.status_code != 200:
                    self._error(f"probe {response.status_code}")
            except requests.RequestException:
                self._error("probe connection")
            into.append(time.perf_counter() - start)
            time.sleep(0.1)

    def run(self, seconds: float) -> None:
        threads = [
            threading.Thread(
                target=self.uploader, args=(self.cases[i], self.slow_kib * 1024, "slow"), daemon=True
            )
            for i in range(self.slow)
        ] + [
            threading.Thread(target=self.uploader, args=(self.cases[self.slow + i], 0, "fast"), daemon=True)
            for i in range(self.fast)
        ]
        for thread in threads:
            thread.start()
        time.sleep(3)  # every slow uploader is now mid-chunk
        probes = [
            threading.Thread(target=self.probe, args=("/", OTHER_HOST, self.landing), daemon=True),
            threading.Thread(
                target=self.probe,
                args=(f"/cases/{self.cases[0]}/images/status.json", HOST, self.status, self.cookie),
                daemon=True,
            ),
        ]
        for thread in probes:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in probes:
            thread.join()


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  "
        f"max {ordered[-1] * 1000:7.1f} ms  ({len(ordered)} requests)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--slow", type=int, default=16)
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--slow-kib", type=int, default=340)
    parser.add_argument("--only", choices=["direct", "caddy"])
    args = parser.parse_args()

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

    from accounts.models import User
    from institutions.management.commands.seed_demo import DEMO_PASSWORD
    from intake.models import Case
    from tests.live import child_database_url, gunicorn_command

    workdir = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        with schema_context("neuro"):
            owner = User.objects.get(email="patient@neuro.example.com")
            cases = [
                str(Case.objects.create(owner=owner, consented_at=timezone.now()).public_id)
                for _ in range(args.slow + args.fast)
            ]
        port = free_port()
        upload_port = free_port()
        env = dict(
            os.environ, DATABASE_URL=child_database_url(), PLATFORM_PORT=str(port), PYTHONUNBUFFERED="1"
        )
        # As deploy/secondread.sh uploads runs it: the same gunicorn, yielding the CPU to pages.
        processes.append(
            subprocess.Popen(
                gunicorn_command(upload_port, niceness=10),
                cwd=BASE_DIR,
                env=env,
            )
        )
        processes.append(
            subprocess.Popen(
                gunicorn_command(port),
                cwd=BASE_DIR,
                env=env,
            )
        )
        wait_for(port, settings.PLATFORM_DOMAIN)
        session = requests.Session()
        page = session.get(f"http://127.0.0.1:{port}/accounts/login/", headers={"Host": HOST}, timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        session.post(
            f"http://127.0.0.1:{port}/accounts/login/",
            data={
                "login": "patient@neuro.example.com",
                "password": DEMO_PASSWORD,
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Host": HOST},
            allow_redirects=False,
            timeout=10,
        )
        cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
        caddy_port = free_port()
        processes.append(start_caddy(workdir, caddy_port, port))
        split_port = free_port()
        processes.append(start_caddy(workdir, split_port, port, upload_port, "Caddyfile.split"))
        print(
            f"{args.slow} slow uploaders at {args.slow_kib} KiB/s, {args.fast} fast ones, "
            f"{args.seconds:.0f} s each; "
            "machine shared (numbers pessimistic)",
            flush=True,
        )
        for name, target in (
            ("straight to gunicorn (./sr run)", port),
            ("through Caddy, buffering, one gunicorn for everything", caddy_port),
            ("through Caddy as deployed: /intake/tus/ on its own gunicorn (nice 10)", split_port),
        ):
            if args.only and not name.startswith({"direct": "straight", "caddy": "through"}[args.only]):
                continue
            load = Load(target, cookie, cases, args.slow, args.fast, args.slow_kib)
            load.run(args.seconds)
            print(name)
            print(f"  another institution's landing page  {percentiles(load.landing)}  (target p95 < 100 ms)")
            print(f"  an uploader's own status JSON       {percentiles(load.status)}  (target p95 < 250 ms)")
            print(f"  chunks completed: {load.chunks}; errors: {load.errors or 'none'}", flush=True)
            time.sleep(3)  # let the previous load's requests drain
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(settings.STORAGE_FILESYSTEM_ROOT, ignore_errors=True)


if __name__ == "__main__":
    main()
