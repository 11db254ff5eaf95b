"""Waiting on a condition, never for a fixed time: tests poll what they wait for (a row's
status, an email, an idle worker) until it holds or a deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], *, timeout: float, message: str, interval: float = 0.1) -> Any:
    """Call ``check`` until it returns something true, and return that; fail with ``message``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(message)
        time.sleep(interval)


def celery_idle(app: Any, queue: str) -> bool:
    """Whether nothing is left to run: no message waiting in ``queue`` on the (Redis) broker, and
    no task running, reserved or scheduled on any worker."""
    with app.connection_for_read() as connection:
        waiting = connection.default_channel.client.llen(queue)
    if waiting:
        return False
    inspect = app.control.inspect(timeout=1.0)
    for busy in (inspect.active(), inspect.reserved(), inspect.scheduled()):
        if busy is None:  # no worker answered: nothing can be said to be idle
            return False
        if any(busy.values()):
            return False
    return True
