"""Reading a subscription in the background, and checking the `tick` writer's lines in
it: each line where the one before ended, the counter up by one (none lost, none twice)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any


class Collector:
    """Reads a subscription in the background into `events`."""

    def __init__(self, it: AsyncIterator[dict[str, Any]]) -> None:
        self.it = it
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for ev in self.it:
                self.events.append(ev)
        finally:
            self.done = True

    def links(self) -> list[str]:
        return [ev["state"] for ev in self.events if ev.get("kind") == "connection"]

    async def close(self) -> None:
        self.task.cancel()
        with _suppress_cancel():
            await self.task
        await self.it.aclose()  # type: ignore[attr-defined]


class _suppress_cancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, t: Any, *_: Any) -> bool:
        return t is asyncio.CancelledError


def tick_lines(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(offset, text) of every `tick` line given, in order."""
    out = []
    for ev in events:
        if ev.get("kind") == "log" and ev["service"] == "tick":
            off = ev["offset"]
            for text in ev["lines"]:
                out.append((off, text))
                off += len(text.encode()) + 1
    return out


def assert_contiguous(lines: list[tuple[int, str]]) -> None:
    """Each line starts where the one before ended, and the counter goes up by one: no
    line lost, none twice."""
    for (o1, t1), (o2, t2) in itertools.pairwise(lines):
        assert o2 == o1 + len(t1.encode()) + 1, f"gap or repeat: {o1} {t1!r} -> {o2} {t2!r}"
        assert int(t2.split()[1]) == int(t1.split()[1]) + 1, (t1, t2)
