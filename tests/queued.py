"""What a piece of code queued: a task's ``delay`` replaced by a recorder, for tests that check
the task a commit would send (and its arguments) without a broker and a worker."""

from __future__ import annotations

from typing import Any

import pytest


def task_calls(monkeypatch: pytest.MonkeyPatch, task: Any) -> list[tuple[Any, ...]]:
    """The positional arguments of every ``task.delay(...)`` from now on, in order."""
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any, **kwargs: Any) -> None:
        assert not kwargs, "our tasks take positional ids"
        calls.append(args)

    monkeypatch.setattr(task, "delay", record)
    return calls
