"""Settings come from the environment through one reader that refuses bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from config.env import env_bool, env_choice, env_int, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def test_it_refuses_a_boolean_it_cannot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="SR_FLAG"):
        env_bool("SR_FLAG", False)


def test_it_reads_booleans_numbers_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_FLAG", "Yes")
    monkeypatch.setenv("SR_NUMBER", "12")
    monkeypatch.setenv("SR_CHOICE", "S3")
    assert env_bool("SR_FLAG", False) is True
    assert env_int("SR_NUMBER", 1) == 12
    assert env_choice("SR_CHOICE", "filesystem", ("filesystem", "s3")) == "s3"


def test_it_refuses_numbers_below_the_minimum_and_unknown_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_NUMBER", "0")
    monkeypatch.setenv("SR_CHOICE", "ftp")
    with pytest.raises(ImproperlyConfigured):
        env_int("SR_NUMBER", 5, minimum=1)
    with pytest.raises(ImproperlyConfigured):
        env_choice("SR_CHOICE", "filesystem", ("filesystem", "s3"))


def test_it_refuses_a_url_of_the_wrong_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_DB", "mysql://localhost/x")
    with pytest.raises(ImproperlyConfigured, match="postgres://"):
        env_url("SR_DB", ("postgres", "postgresql"))


def test_it_prefers_a_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-the-file\n")
    monkeypatch.setenv("SR_SECRET", "from-the-variable")
    monkeypatch.setenv("SR_SECRET_FILE", str(secret))
    assert env_str("SR_SECRET") == "from-the-file"


def test_it_requires_a_variable_without_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SR_MISSING", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SR_MISSING"):
        env_str("SR_MISSING")


_PRINT_SETTINGS = "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY[:4])"


def _load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "SR_MODE", "DEBUG", "MFA_ENCRYPTION_KEYS", "SR_HTTPS_REDIRECT"}
    }
    clean.update(DJANGO_SETTINGS_MODULE="config.settings.base", **env)
    return subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow  # loads the settings in a new Python process
def test_it_refuses_to_start_in_production_without_a_real_secret_key() -> None:
    result = _load_settings(SR_MODE="production")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.slow  # loads the settings in a new Python process
def test_it_refuses_to_start_in_production_without_an_mfa_encryption_key() -> None:
    result = _load_settings(SR_MODE="production", SECRET_KEY="k" * 50)
    assert result.returncode != 0
    assert "MFA_ENCRYPTION_KEYS" in result.stderr


@pytest.mark.slow  # loads the settings in a new Python process
def test_it_starts_in_production_with_a_secret_key_and_debug_off() -> None:
    result = _load_settings(SR_MODE="production", SECRET_KEY="k" * 50, MFA_ENCRYPTION_KEYS="m" * 44)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "kkkk"]


@pytest.mark.slow  # loads the settings in a new Python process
def test_it_redirects_to_https_and_sends_hsts_in_production() -> None:
    script = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, "
        "s.SECURE_REDIRECT_EXEMPT)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "SR_MODE", "SR_HTTPS_REDIRECT"}}
    clean.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SR_MODE="production",
        SECRET_KEY="k" * 50,
        MFA_ENCRYPTION_KEYS="m" * 44,
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True 31536000 True ['^healthz$', '^tls/ask$']")


def test_the_https_redirect_spares_probes_and_the_proxys_certificate_question(
    neuro_client: Client, platform_client: Client, settings: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = neuro_client.get("/accounts/login/?next=/cases/")
    assert (
        response.status_code == 301
        and response["Location"] == "https://neuro.localhost/accounts/login/?next=/cases/"
    )
    assert neuro_client.get("/healthz").status_code in (200, 503)
    assert platform_client.get("/tls/ask?domain=neuro.localhost").status_code != 301
    secure = neuro_client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200 and secure["Strict-Transport-Security"].startswith("max-age=31536000")
