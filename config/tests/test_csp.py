"""A Content-Security-Policy with a per-response nonce on every page, and no inline script or
handler left in any template that would need 'unsafe-inline'."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client

from tests.live import BASE_DIR
from tests.staff import staff_force_login

NONCE = re.compile(r"script-src 'self' 'nonce-([A-Za-z0-9_-]+)'")


def _templates() -> list[Path]:
    skip = {".venv", "node_modules", "email"}
    return [p for p in BASE_DIR.rglob("*.html") if not skip & set(p.parts) and "templates" in p.parts]


def test_no_template_has_an_inline_handler_or_an_unnonced_inline_script() -> None:
    problems = []
    for path in _templates():
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'nonce="{{ csp_nonce }}"' not in tag:
                problems.append(f"{path}: {tag}")
        if re.search(r"\son[a-z]+\s*=", text) or "javascript:" in text:
            problems.append(f"{path}: inline handler")
    assert not problems, problems


def test_every_page_gets_a_policy_with_a_fresh_nonce(neuro: object, platform_client: Client) -> None:
    staff = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(staff, "admin@neuro.example.com")
    pages = [
        (platform_client, "/"),
        (platform_client, "/start/"),
        (Client(HTTP_HOST="neuro.localhost"), "/"),
        (Client(HTTP_HOST="neuro.localhost"), "/accounts/login/"),
        (staff, "/workspace/"),
        (staff, "/payments/settings/"),
        (staff, "/settings/"),
    ]
    nonces = set()
    for client, path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        match = NONCE.search(policy)
        assert match, (path, policy)
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        nonces.add(match.group(1))
    assert len(nonces) == len(pages)  # one per response
