"""Waiting on a condition, never for a fixed time.

`wait_until` (sync) and `wait_for` (its async twin) poll a predicate until it returns
something truthy and return that value; on time-out they fail saying what was waited for.
A predicate may raise (e.g. `AssertionError("the engine exited")`) to stop waiting at once;
the async twin also takes predicates that return an awaitable."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

What = str | Callable[[], str]
"""What is waited for, said on time-out; a callable is asked then (for the latest state)."""


def _timed_out(what: What, pred: Any, timeout: float) -> AssertionError:
    text = what() if callable(what) else what
    return AssertionError(f"timed out after {timeout:g}s waiting for {text or pred}")


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, what: What = "",
               interval: float = 0.05) -> Any:
    """Poll `pred` until truthy; `timeout=0` asks once (now or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise _timed_out(what, pred, timeout)
        time.sleep(interval)


async def wait_for(pred: Callable[[], Any], timeout: float = 10.0, what: What = "",
                   interval: float = 0.01) -> Any:
    """`wait_until` for async tests: the loop runs on meanwhile (generous time-outs:
    behaviour is tested, not speed)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if inspect.isawaitable(v):
            v = await v
        if v:
            return v
        if time.monotonic() >= deadline:
            raise _timed_out(what, pred, timeout)
        await asyncio.sleep(interval)


def wait_text(path: Path, text: str, count: int = 1, timeout: float = 20) -> str:
    """The file's text once `text` is in it `count` times (a missing file is empty)."""
    def read() -> str:
        return path.read_text() if path.exists() else ""

    def seen() -> str | None:
        out = read()
        return out if out.count(text) >= count else None

    return wait_until(seen, timeout, lambda: f"{text!r} x{count} in {path}:\n{read()}")
