"""Rate limits through the shipped kind of proxy: a real Caddy in front of gunicorn.

Clients connect to Caddy from different loopback addresses (127.0.0.2, 127.0.0.3, ...), as
patients of one institution would from different machines. Caddy passes each one's address in
X-Forwarded-For; gunicorn's app trusts only Caddy (TRUSTED_PROXIES=127.0.0.1). One attacker is
then limited on their own address, whatever X-Forwarded-For they forge, and other patients
still sign in.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from institutions.management.commands.seed_demo import DEMO_PASSWORD
from tests.live import BASE_DIR, BIN, _wait_for_http, child_env, free_port

HOST = "neuro.localhost"
# The fixtures start processes on the test database, which exists only for django_db tests.
pytestmark = pytest.mark.django_db


@dataclass
class Reply:
    status: int
    location: str
    text: str


class Browser:
    """A minimal HTTP client with cookies, connecting from ``source`` (a loopback address)."""

    def __init__(self, port: int, source: str) -> None:
        self.port, self.source = port, source
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: dict[str, str] | None = None, forwarded: str | None = None
    ) -> Reply:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=30, source_address=(self.source, 0)
        )
        headers = {"Host": HOST}
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        reply = Reply(
            response.status, response.getheader("Location", ""), response.read().decode(errors="replace")
        )
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0]
        connection.close()
        return reply

    def sign_in(self, email: str, password: str, forwarded: str | None = None) -> Reply:
        page = self.request("GET", "/accounts/login/", forwarded=forwarded)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        return self.request(
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": token.group(1), "login": email, "password": password},
            forwarded=forwarded,
        )


def _caddy() -> str:
    caddy = shutil.which("caddy")
    if caddy is None:  # ./sr test installs it; say so loudly rather than skip
        raise RuntimeError("these tests need Caddy (apt-get install caddy; ./sr test installs it)")
    return caddy


@pytest.fixture(scope="module")
def behind_caddy(django_db_setup: None) -> Iterator[tuple[int, int]]:
    """(caddy port, gunicorn port): gunicorn with rate limits on, trusting only Caddy."""
    app_port, proxy_port = free_port(), free_port()
    app = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{app_port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
        ],
        cwd=BASE_DIR,
        env=child_env(PLATFORM_PORT=str(proxy_port), TRUSTED_PROXIES="127.0.0.1", SR_TEST_RATE_LIMITS="1"),
    )
    folder = Path(tempfile.mkdtemp(prefix="secondread-caddy-"))
    (folder / "Caddyfile").write_text(
        "{\n\tadmin off\n\tauto_https off\n}\n"
        f"http://:{proxy_port} {{\n\treverse_proxy 127.0.0.1:{app_port}\n}}\n"
    )
    caddy = subprocess.Popen(
        [_caddy(), "run", "--config", str(folder / "Caddyfile"), "--adapter", "caddyfile"],
        cwd=folder,
        env={
            "HOME": str(folder),
            "XDG_DATA_HOME": str(folder),
            "XDG_CONFIG_HOME": str(folder),
            "PATH": "/usr/bin:/bin",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_http(f"http://127.0.0.1:{app_port}/healthz", HOST, app)
        _wait_for_http(f"http://127.0.0.1:{proxy_port}/healthz", HOST, caddy)
        yield proxy_port, app_port
    finally:
        for process in (caddy, app):
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _signed_in(reply: Reply) -> bool:
    return reply.status == 302 and "/accounts/login/" not in reply.location


def test_one_attacker_behind_caddy_does_not_lock_out_the_institution(behind_caddy: tuple[int, int]) -> None:
    proxy_port, _ = behind_caddy
    attacker = Browser(proxy_port, "127.0.0.2")
    for n in range(10):
        # A forged X-Forwarded-For, new each time, does not make the attacker someone new.
        response = attacker.sign_in(f"guess{n}@example.org", "wrong-password", forwarded=f"198.51.100.{n}")
        assert response.status == 200
    refused = Browser(proxy_port, "127.0.0.2").sign_in(
        "patient@neuro.example.com", DEMO_PASSWORD, forwarded="203.0.113.200"
    )
    assert not _signed_in(refused) and "Too many failed login attempts" in refused.text
    # Another patient, through the same Caddy, signs in.
    assert _signed_in(Browser(proxy_port, "127.0.0.3").sign_in("patient@neuro.example.com", DEMO_PASSWORD))


def test_x_forwarded_for_is_ignored_from_anyone_but_the_proxy(behind_caddy: tuple[int, int]) -> None:
    _, app_port = behind_caddy
    # Straight to gunicorn from an address that is not the proxy: the header is not believed.
    for n in range(10):
        Browser(app_port, "127.0.0.4").sign_in(
            f"other{n}@example.org", "wrong-password", forwarded=f"192.0.2.{n}"
        )
    refused = Browser(app_port, "127.0.0.4").sign_in("patient@neuro.example.com", DEMO_PASSWORD)
    assert not _signed_in(refused)


def test_a_malformed_x_forwarded_for_is_never_an_error(behind_caddy: tuple[int, int]) -> None:
    _, app_port = behind_caddy
    for forwarded in ("garbage", "1.2.3.4,,", "::zz, 1.1.1.1", "1.1.1.1," * 100):
        # From 127.0.0.1, the trusted proxy's own address: the header is read, and ignored.
        response = Browser(app_port, "127.0.0.1").request("GET", "/accounts/login/", forwarded=forwarded)
        assert response.status == 200
