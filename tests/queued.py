"""What a piece of code queued: a task's ``delay`` replaced by a recorder, for tests that check
the task a commit would send (and its arguments) without a broker and a worker."""

from __future__ import annotations

from typing import Any

import pytest


def task_calls(monkeypatch: pytest.MonkeyPatch, task: Any) -> list[tuple[Any, ...]]:
    """The positional arguments of every ``task.delay(...)`` (or ``apply_async``) from now on,
    in order."""
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any, **kwargs: Any) -> None:
        assert not kwargs, "our tasks take positional ids"
        calls.append(args)

    def record_apply(
        args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> None:
        record(*args, **(kwargs or {}))

    monkeypatch.setattr(task, "delay", record)
    monkeypatch.setattr(task, "apply_async", record_apply)
    return calls
