"""Worker and beat prove they are alive by touching a file from inside their own loops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import celery_probes
from config.celery_app import app
from config.celery_probes import MAX_AGE, ProbedScheduler, alive, probe_file


@pytest.fixture
def probe_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SR_PROBE_DIR", str(tmp_path))
    return tmp_path


def _probe(name: str) -> int:
    return subprocess.run([sys.executable, "-m", "config.liveness_probe", name], env=os.environ).returncode


@pytest.mark.slow  # runs the probe as its own Python process
def test_it_is_dead_until_the_process_touched_its_file(probe_dir: Path) -> None:
    assert not alive("worker")
    assert _probe("worker") == 1


@pytest.mark.slow  # runs the probe as its own Python process
def test_it_is_alive_while_the_file_is_fresh_and_dead_once_stale(probe_dir: Path) -> None:
    celery_probes.touch("worker")
    assert alive("worker") and _probe("worker") == 0
    assert not alive("worker", now=time.time() + MAX_AGE["worker"] + 1)


@pytest.mark.slow  # runs the probe as its own Python process
def test_beat_touches_its_file_at_every_tick(probe_dir: Path, tmp_path: Path) -> None:
    scheduler = ProbedScheduler(app, schedule_filename=str(tmp_path / "schedule"), lazy=True)
    scheduler.setup_schedule()
    scheduler.tick()
    assert probe_file("beat").exists() and _probe("beat") == 0
    scheduler.close()


def test_the_worker_has_the_probe_step() -> None:
    assert any(step.__name__ == "LivenessProbe" for step in app.steps["worker"])


@pytest.mark.worker
def test_a_real_worker_keeps_its_file_fresh(celery_worker_process: object) -> None:
    # The session's worker writes into the test run's SR_PROBE_DIR (config.settings.test).
    path = probe_file("worker")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not path.exists():
        time.sleep(0.2)
    assert path.exists()
