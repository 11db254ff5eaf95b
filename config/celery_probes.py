"""Liveness of the Celery worker and beat, for exec probes (``secondread.sh probe worker``).

Neither process serves HTTP, so each proves it is alive by touching a file in ``SR_PROBE_DIR``
from inside its own loop: the worker from a timer of its event loop (a worker whose loop is
stuck stops touching it), beat from every tick of its scheduler. The probe
(``python -m config.liveness_probe worker``) only compares the file's age with a limit: it
loads no Django settings and connects to nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

WORKER_SECONDS = 10.0
# Beat ticks at least every CELERY_BEAT_MAX_LOOP_INTERVAL (30 s).
MAX_AGE = {"worker": 60.0, "beat": 120.0}


def probe_file(name: str) -> Path:
    return Path(os.environ.get("SR_PROBE_DIR") or "/tmp") / f"secondread-{name}.alive"  # noqa: S108


def touch(name: str) -> None:
    path = probe_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def alive(name: str, now: float | None = None) -> bool:
    try:
        age = (now if now is not None else time.time()) - probe_file(name).stat().st_mtime
    except FileNotFoundError:
        return False
    return age <= MAX_AGE[name]


def install_worker_probe(app: Any) -> None:
    """Add a worker bootstep whose timer touches the worker's file every WORKER_SECONDS."""
    from celery import bootsteps

    class LivenessProbe(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Timer"}

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.tref: Any = None

        def start(self, parent: Any) -> None:
            touch("worker")
            self.tref = parent.timer.call_repeatedly(WORKER_SECONDS, touch, ("worker",), priority=10)

        def stop(self, parent: Any) -> None:
            if self.tref is not None:
                self.tref.cancel()
            probe_file("worker").unlink(missing_ok=True)

    app.steps["worker"].add(LivenessProbe)


class ProbedScheduler(PersistentScheduler):
    """Celery's default (file-backed) beat scheduler, touching beat's file at every tick."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        touch("beat")
        return float(super().tick(*args, **kwargs))
