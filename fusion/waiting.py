"""Waiting for something to happen, with a deadline: one polling loop for the whole code base."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], timeout: float, interval: float, what: str) -> T:
    """Call ``condition`` every ``interval`` s until it returns a truthy value, and return that value.

    ``condition`` is always called at least once, even with a ``timeout`` of zero or less. After
    ``timeout`` s it raises ``TimeoutError`` naming ``what``; an exception ``condition`` raises
    goes through unchanged (the way to give up early, e.g. when the awaited process died).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(min(interval, remaining))
