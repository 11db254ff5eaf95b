"""The production path, from an empty database, as an operator following deploy/README.md runs it.

No containers: the same commands the image and the migrate job run (``deploy/secondread.sh``:
collectstatic at build time, migrate, web with ``deploy/gunicorn.conf.py``, worker, beat), in
``SR_MODE=production`` with the production settings module, behind a real Caddy (Debian's
package) loading the repository's Caddyfile with its internal CA, files in S3 (moto server).

The platform domain is ``secondread.localhost``: Chromium resolves ``*.localhost`` to loopback by
itself, so the institution's host needs no DNS; curl is told with ``--resolve``.
"""

# long module: one end-to-end path (build, migrate, serve behind Caddy, sign in, upload, read)
# whose steps share servers started once; apart, each part would start them again.

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.live import BASE_DIR, child_database_url, free_port
from tests.staff import totp_code
from tests.stripe_double import signature_header

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SCRIPT = BASE_DIR / "deploy" / "secondread.sh"
CADDYFILE = BASE_DIR / "deploy" / "caddy" / "Caddyfile"
PLATFORM = "secondread.localhost"  # two labels: no certificate is valid for "*.localhost"
INSTITUTION = "smoke"
CUSTOM_DOMAIN = "second-opinion.smoke-hospital.example"
WEBHOOK_SECRET = "whsec_smoke_" + "0" * 24
OPERATOR = "first-operator@smoke.example"
OPERATOR_PASSWORD = "a-long-operator-password-7"
METRICS_TOKEN = "smoke-metrics-token"
CLIENT_ADDRESS = "127.0.0.2"  # curl binds here; Caddy and gunicorn talk over 127.0.0.1


@dataclass
class Stack:
    env: dict[str, str]
    https_port: int
    http_port: int
    root_ca: Path
    web_log: Path
    data_dir: Path
    s3_endpoint: str
    metrics_ports: dict[str, int]
    app_database_url: str  # web, worker and beat connect as this role; ``env`` is the owner's
    uploads_log: Path  # the upload processes' (secondread.sh uploads), behind /intake/tus/

    def https(self, host: str, path: str = "/") -> str:
        return f"https://{host}:{self.https_port}{path}"

    def curl(self, *args: str, host: str = PLATFORM) -> subprocess.CompletedProcess[str]:
        """curl with Caddy's root certificate trusted (the chain is checked), IPv4 only."""
        return subprocess.run(
            [
                "curl",
                "-4",
                "--silent",
                "--show-error",
                "--max-time",
                "20",
                "--cacert",
                str(self.root_ca),
                "--resolve",
                f"{host}:{self.https_port}:127.0.0.1",
                *args,
            ],
            capture_output=True,
            text=True,
        )

    def manage(self, *args: str) -> str:
        return _run([sys.executable, "manage.py", *args], self.env)


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command[:3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def _need_caddy() -> str:
    caddy = shutil.which("caddy")
    if caddy is None:  # ./sr test installs it; a bare pytest run must not skip silently
        pytest.fail("The production smoke test needs Caddy (apt-get install caddy; ./sr test does it).")
    return caddy


@pytest.fixture(scope="module")
def empty_database() -> Iterator[str]:
    """A new, empty database on the tests' PostgreSQL server; its DATABASE_URL."""
    name = f"sr_smoke_{os.getpid()}"
    admin_url = child_database_url()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield re.sub(r"/[^/?]+(\?|$)", rf"/{name}\1", admin_url, count=1)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{name}_app"')  # the application's (roles are per server)


def _app_url(owner_url: str) -> str:
    """The application's role on the same database (the migrate step creates it)."""
    name = re.search(r"/([^/?]+)(\?|$)", owner_url.split("@", 1)[1]).group(1)  # type: ignore[union-attr]
    return re.sub(r"//[^@/]*@", f"//{name}_app:{secrets.token_urlsafe(12)}@", owner_url, count=1)


def _wait_for(check: Any, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stack(empty_database: str, moto_endpoint: str) -> Iterator[Stack]:
    caddy = _need_caddy()
    app_url = _app_url(empty_database)
    work = Path(tempfile.mkdtemp(prefix="secondread-smoke-"))
    web_port, uploads_port, https_port, http_port = free_port(), free_port(), free_port(), free_port()
    web_metrics, worker_metrics, uploads_metrics = free_port(), free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SR_", "DJANGO_", "PLATFORM_", "STORAGE_", "S3_", "EMAIL_", "STRIPE_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHON=sys.executable,
        PYTHONUNBUFFERED="1",
        # The production settings, exactly as the image has them (no test settings module).
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SR_MODE="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        MFA_ENCRYPTION_KEYS=secrets.token_urlsafe(32),
        SR_DATA_DIR=str(work / "data"),
        SR_PROBE_DIR=str(work / "probes"),
        # Two roles, as deployed: the migrate step (and operators' shell commands) as the owner,
        # which creates the application's role; web, worker and beat as that role, which may
        # only append to the audit log (tenants.database_roles).
        DATABASE_URL=empty_database,
        DATABASE_APP_URL=app_url,
        REDIS_URL=os.environ["REDIS_URL"],
        CELERY_QUEUE=f"secondread-smoke-{os.getpid()}",
        PLATFORM_DOMAIN=PLATFORM,
        PLATFORM_PORT=str(https_port),
        PORT=str(web_port),
        WEB_CONCURRENCY="1",
        WORKER_CONCURRENCY="1",
        TRUSTED_PROXIES="127.0.0.1/32",
        STORAGE_BACKEND="s3",
        S3_ENDPOINT=moto_endpoint,
        S3_ACCESS_KEY="smoke",
        S3_SECRET_KEY="smoke-secret",
        S3_BUCKET=f"smoke-{os.getpid()}",
        S3_SECURE="false",
        EMAIL_URL="file:",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        # CI machines are shared: first connections may miss production's sub-second deadline.
        PROBE_TIMEOUT_MS="5000",
        METRICS_PORT=str(web_metrics),
        METRICS_TOKEN=METRICS_TOKEN,
    )
    as_app = {"DATABASE_URL": app_url}
    processes: list[subprocess.Popen[Any]] = []
    logs: list[Any] = []

    def start(name: str, command: list[str], extra: dict[str, str] | None = None) -> None:
        log = open(work / f"{name}.log", "w")  # noqa: SIM115 (closed at teardown)
        logs.append(log)
        processes.append(
            subprocess.Popen(
                command,
                cwd=BASE_DIR,
                env={**env, **as_app, **(extra or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    try:
        # Build time (the Dockerfile), then the release's migrate job: on an empty database.
        _run([str(SCRIPT), "collectstatic"], env)
        _run([str(SCRIPT), "migrate"], env)
        start("web", [str(SCRIPT), "web"])
        start(
            "uploads",
            [str(SCRIPT), "uploads"],
            {"PORT": str(uploads_port), "METRICS_PORT": str(uploads_metrics)},
        )
        start("worker", [str(SCRIPT), "worker"], {"METRICS_PORT": str(worker_metrics)})
        start("beat", [str(SCRIPT), "beat"])
        caddy_home = work / "caddy"
        start(
            "caddy",
            [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            {
                "HOME": str(caddy_home),
                "XDG_DATA_HOME": str(caddy_home / "data"),
                "XDG_CONFIG_HOME": str(caddy_home / "config"),
                "SR_UPSTREAM": f"127.0.0.1:{web_port}",
                "SR_UPLOADS_UPSTREAM": f"127.0.0.1:{uploads_port}",
                "SR_CADDY_TLS": "internal",
                "CADDY_ADMIN": "off",
                "CADDY_EXTRA_GLOBAL": "skip_install_trust",
                "CADDY_HTTP_PORT": str(http_port),
                "CADDY_HTTPS_PORT": str(https_port),
                "SR_HTTPS_PORT_SUFFIX": f":{https_port}",
            },
        )
        root_ca = caddy_home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        _wait_for(root_ca.exists, "Caddy's internal CA")
        stack = Stack(
            env,
            https_port,
            http_port,
            root_ca,
            work / "web.log",
            work / "data",
            moto_endpoint,
            {"web": web_metrics, "worker": worker_metrics},
            app_url,
            work / "uploads.log",
        )

        def answers() -> bool:
            for process in processes:
                assert process.poll() is None, f"a process exited: {process.args!r}\n" + _logs(work)
            return stack.curl("--fail", stack.https(PLATFORM, "/livez")).returncode == 0

        _wait_for(answers, "the platform over HTTPS")
        yield stack
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
        if os.environ.get("SR_SMOKE_KEEP"):  # debugging: keep the logs and Caddy's CA
            print(f"smoke test files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _logs(work: Path) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in work.glob("*.log"))


@pytest.fixture(scope="module")
def institution(stack: Stack) -> str:
    """An institution, created as an operator would from a shell, with a verified custom domain."""
    stack.manage(
        "shell",
        "-c",
        "from institutions.services import institution_create; from tenants.models import Domain; "
        f"i = institution_create(name='Smoke Hospital', slug='{INSTITUTION}'); "
        f"Domain.objects.create(domain='{CUSTOM_DOMAIN}', tenant=i, is_primary=False)",
    )
    return f"{INSTITUTION}.{PLATFORM}"


def _headers(output: str) -> dict[str, str]:
    """The last response's headers of ``curl -i`` / ``-D -`` output, lower-cased names."""
    blocks = [block for block in output.replace("\r\n", "\n").split("\n\n") if block.startswith("HTTP/")]
    lines = blocks[-1].splitlines()
    headers = {"status": lines[0].split()[1]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def test_it_serves_the_platform_over_https_with_hsts(stack: Stack) -> None:
    result = stack.curl("-i", stack.https(PLATFORM, "/"))
    assert result.returncode == 0, result.stderr  # the certificate chain was verified
    headers = _headers(result.stdout)
    assert headers["status"] == "200"
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert "server" not in headers


def test_it_answers_readiness_and_health_from_every_dependency(stack: Stack) -> None:
    def answer(path: str) -> dict[str, Any]:
        result = stack.curl(stack.https(PLATFORM, path))
        return json.loads(result.stdout) if result.returncode == 0 else {}

    # Polled, as an orchestrator does: a first answer on a loaded CI machine may be a timeout.
    _wait_for(lambda: answer("/readyz").get("status") == "ok", "/readyz", seconds=60)
    assert answer("/readyz") == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    # /healthz adds storage: the S3 backend on the moto server.
    _wait_for(lambda: answer("/healthz").get("status") == "ok", "/healthz", seconds=60)
    assert answer("/healthz")["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


def test_it_serves_an_institution_over_https(stack: Stack, institution: str) -> None:
    result = stack.curl("-i", stack.https(institution, "/"), host=institution)
    assert result.returncode == 0, result.stderr
    assert _headers(result.stdout)["status"] == "200"
    assert "Smoke Hospital" in result.stdout


def test_it_serves_as_a_role_that_cannot_rewrite_the_audit_log(stack: Stack, institution: str) -> None:
    # A failed sign-in, served by web as the application's role, is recorded...
    page = stack.curl("-c", "-", stack.https(institution, "/accounts/login/"), host=institution)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.stdout)
    cookie = re.search(r"csrftoken\s+(\S+)", page.stdout)
    assert token and cookie, page.stdout[-500:]
    stack.curl(
        "--cookie",
        f"csrftoken={cookie.group(1)}",
        "-H",
        f"Referer: {stack.https(institution, '/accounts/login/')}",
        "--data",
        f"csrfmiddlewaretoken={token.group(1)}&login=nobody@smoke.example&password=wrong-password-1",
        stack.https(institution, "/accounts/login/"),
        host=institution,
    )
    with psycopg.connect(stack.app_database_url, autocommit=True) as conn:
        failed = conn.execute(
            "SELECT count(*) FROM smoke.audit_auditevent WHERE action = 'auth.sign_in_failed'"
        ).fetchone()
        assert failed is not None and failed[0] >= 1
        # ...and that role can neither change nor remove it, nor switch the guard off.
        for attack in (
            "UPDATE smoke.audit_auditevent SET action = 'auth.sign_in'",
            "DELETE FROM smoke.audit_auditevent",
            "TRUNCATE smoke.audit_auditevent",
            "ALTER TABLE smoke.audit_auditevent DISABLE TRIGGER USER",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attack)
    assert "chain intact" in stack.manage("audit_verify")


def test_it_redirects_plain_http_to_https(stack: Stack) -> None:
    result = stack.curl("-i", f"http://{PLATFORM}:{stack.http_port}/accounts/login/")
    headers = _headers(result.stdout)
    assert headers["status"] == "301"
    assert headers["location"] == stack.https(PLATFORM, "/accounts/login/")


def test_it_gets_certificates_on_demand_only_for_domains_it_routes(stack: Stack, institution: str) -> None:
    ask = stack.curl(stack.https(PLATFORM, f"/tls/ask?domain={CUSTOM_DOMAIN}"))
    assert ask.stdout == "ok"
    refused = stack.curl("-i", stack.https(PLATFORM, "/tls/ask?domain=not-ours.example"))
    assert _headers(refused.stdout)["status"] == "404"
    # The handshake itself: a verified custom domain gets a certificate (Caddy asked /tls/ask),
    # an unknown name gets none.
    custom = stack.curl("-i", stack.https(CUSTOM_DOMAIN, "/"), host=CUSTOM_DOMAIN)
    assert custom.returncode == 0, custom.stderr
    assert "Smoke Hospital" in custom.stdout
    unknown = stack.curl(stack.https("not-ours.example", "/"), host="not-ours.example")
    assert unknown.returncode != 0  # no certificate: the TLS handshake fails


def test_it_sees_the_clients_real_address(stack: Stack) -> None:
    def readyz_lines() -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for line in stack.web_log.read_text().splitlines()
            if line.startswith('{"access"') and "/readyz" in line
        ]

    before = len(readyz_lines())
    marker = f"/readyz?probe={secrets.token_hex(4)}"
    result = stack.curl("--interface", CLIENT_ADDRESS, stack.https(PLATFORM, marker))
    assert result.returncode == 0, result.stderr
    # gunicorn writes the access line after the answer: wait for it rather than for a while.
    _wait_for(lambda: len(readyz_lines()) > before, "the request's access log line", seconds=10)
    assert readyz_lines()[-1]["client"] == CLIENT_ADDRESS  # not Caddy's 127.0.0.1
    # The access log never carries a query string (signed-URL tokens, filters).
    assert "probe=" not in stack.web_log.read_text()


def test_uploads_go_to_their_own_processes_and_pages_do_not(stack: Stack, institution: str) -> None:
    def lines(log: Path, request: str) -> int:
        return sum(f'"access": "{request}"' in line for line in log.read_text().splitlines())

    upload_before = lines(stack.uploads_log, "OPTIONS /intake/tus/")
    page_before = lines(stack.web_log, "GET /accounts/login/")
    tus = stack.curl("-i", "-X", "OPTIONS", stack.https(institution, "/intake/tus/"), host=institution)
    assert _headers(tus.stdout).get("tus-version"), tus.stdout[:500]
    page = stack.curl("-i", stack.https(institution, "/accounts/login/"), host=institution)
    assert _headers(page.stdout)["status"] == "200"
    # gunicorn writes the access line after the answer: wait for it rather than for a while.
    _wait_for(lambda: lines(stack.uploads_log, "OPTIONS /intake/tus/") > upload_before, "the upload's line")
    _wait_for(lambda: lines(stack.web_log, "GET /accounts/login/") > page_before, "the page's line")
    assert lines(stack.web_log, "OPTIONS /intake/tus/") == 0
    assert lines(stack.uploads_log, "GET /accounts/login/") == 0


def test_it_answers_stripe_webhooks(stack: Stack) -> None:
    unsigned = stack.curl("-i", "-X", "POST", "--data", "{}", stack.https(PLATFORM, "/stripe/webhook"))
    assert _headers(unsigned.stdout)["status"] == "400"
    event = json.dumps(
        {"id": "evt_smoke_1", "object": "event", "type": "customer.created", "data": {"object": {}}}
    ).encode()
    signed = stack.curl(
        "-i",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        f"Stripe-Signature: {signature_header(event, WEBHOOK_SECRET)}",
        "--data-binary",
        event.decode(),
        stack.https(PLATFORM, "/stripe/webhook"),
    )
    assert _headers(signed.stdout)["status"] == "200", signed.stdout


def test_it_serves_static_files_compressed_and_cached(stack: Stack) -> None:
    manifest = json.loads((stack.data_dir / "static" / "staticfiles.json").read_text())
    hashed = next(path for name, path in manifest["paths"].items() if name.endswith(".css"))
    result = stack.curl(
        "--dump-header",
        "-",
        "--output",
        os.devnull,
        "-H",
        "Accept-Encoding: gzip",
        stack.https(PLATFORM, f"/static/{hashed}"),
    )
    headers = _headers(result.stdout)
    assert headers["status"] == "200"
    assert headers["content-encoding"] == "gzip"
    assert "immutable" in headers["cache-control"] and "max-age=315360000" in headers["cache-control"]


def test_it_runs_worker_and_beat_with_live_probes(stack: Stack) -> None:
    for name in ("worker", "beat"):
        _wait_for(
            lambda name=name: subprocess.run([str(SCRIPT), "probe", name], env=stack.env).returncode == 0,
            f"the {name} probe",
            seconds=60,
        )


def _scrape(port: int, token: str | None = METRICS_TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_it_serves_metrics_on_their_own_port_with_a_token(stack: Stack) -> None:
    stack.curl(stack.https(PLATFORM, "/tls/ask?domain=nothing.example"))
    assert _scrape(stack.metrics_ports["web"], token=None)[0] == 401
    status, web = _scrape(stack.metrics_ports["web"])
    assert status == 200
    # Added up over gunicorn's workers (multiprocess mode), labelled by URL pattern.
    assert re.search(r'secondread_http_requests_total\{method="GET",status="404",view="tls_ask"\} [1-9]', web)
    # The worker's endpoint: the gauges of the beat task config.metrics_refresh (every 30 s),
    # set while it runs; its "succeeded" count only once it has returned.
    succeeded = 'secondread_celery_tasks_total{outcome="succeeded",task="config.metrics_refresh"}'
    _wait_for(
        lambda: succeeded in _scrape(stack.metrics_ports["worker"])[1],
        "the worker's task counts",
        seconds=120,
    )
    worker = _scrape(stack.metrics_ports["worker"])[1]
    assert "secondread_storage_up 1.0" in worker
    assert "secondread_celery_queue_depth{" in worker


def test_it_lets_the_first_operator_in_with_a_second_factor(
    stack: Stack, institution: str, browser: Any
) -> None:
    output = stack.manage("createoperator", OPERATOR, "--name", "First Operator")
    link = re.search(r"https://\S+/accounts/password/reset/key/\S+/", output)
    assert link is not None, output
    context = browser.new_context(ignore_https_errors=True)  # Caddy's CA (curl checks the chain)
    page = context.new_page()
    try:
        page.goto(link.group(0))
        page.fill("input[name=password1]", OPERATOR_PASSWORD)
        page.fill("input[name=password2]", OPERATOR_PASSWORD)
        _submit(page, "password1")
        page.goto(stack.https(PLATFORM, "/accounts/login/"))
        page.fill("input[name=login]", OPERATOR)
        page.fill("input[name=password]", OPERATOR_PASSWORD)
        _submit(page, "login")
        page.goto(stack.https(PLATFORM, "/operators/"))
        # Not in yet: first the authenticator app (allauth confirms the password first).
        if "/reauthenticate/" in page.url:
            page.fill("input[name=password]", OPERATOR_PASSWORD)
            _submit(page, "password")
        assert "/accounts/2fa/totp/activate/" in page.url, page.url
        secret = re.search(r"\b[A-Z2-7]{32}\b", page.content())
        assert secret is not None
        page.fill("input[name=code]", totp_code(secret.group(0)))
        _submit(page, "code")
        page.goto(stack.https(PLATFORM, "/operators/"))
        assert page.url == stack.https(PLATFORM, "/operators/")
        assert "Smoke Hospital" in page.content()
    finally:
        context.close()


def _submit(page: Any, field: str) -> None:
    """Submit the form holding ``field`` (the page header has a sign-out form of its own)."""
    page.click(f"form:has(input[name={field}]) button[type=submit]")
    page.wait_for_load_state()
