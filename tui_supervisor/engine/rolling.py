"""A rolling restart: one service at a time, each up again before the next.

"Up" is `Service.ready` when the service has a readiness probe (`ready` is not None),
else the state `running` (it stayed up `start_time`). A service that is not up within
its `start_time` + ROLLING_MARGIN (or ends: fatal, stopped) fails the rolling restart:
the ones after it are left untouched, so at most one copy is ever down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tui_supervisor.engine.states import ENDED_STATES, UP_STATES

if TYPE_CHECKING:
    from tui_supervisor.engine.service import Service
    from tui_supervisor.engine.views import RestartResult, ServiceOutcome

ROLLING_MARGIN = 30.0
"""Seconds beyond a service's `start_time` a rolling restart waits for it to be up (a
readiness probe's first passes, a slow spawn after its leftovers are cleared)."""
POLL = 0.05


def is_up(svc: Service) -> bool:
    ready = svc.ready
    return svc.state in UP_STATES and (ready is None or ready)


def not_coming_up(svc: Service) -> str | None:
    """Why waiting for `svc` is pointless (it ended), or None."""
    if svc.state in ENDED_STATES:
        return f"{svc.name} is {svc.state.value}" + (f": {svc.rec.reason}"
                                                        if svc.rec.reason else "")
    return None


async def wait_up(svc: Service, timeout: float) -> str | None:
    """None once `svc` is up; else why not (ended, or not up within `timeout`)."""
    deadline = time.monotonic() + timeout
    while not is_up(svc):
        why = not_coming_up(svc)
        if why:
            return why
        if time.monotonic() >= deadline:
            what = "ready" if svc.ready is not None else "running"
            return f"{svc.name} not {what} within {timeout:g}s (it is {svc.state.value})"
        await asyncio.sleep(POLL)
    return None


async def rolling_restart(
    svcs: list[Service], restart_one: Callable[[Service], Awaitable[ServiceOutcome]],
    current: Callable[[Service], bool] = lambda svc: True,
) -> RestartResult:  # fmt: skip
    """Restart `svcs` in order with `restart_one`, waiting for each to be up; one no
    longer `current` (scaled down or reloaded away meanwhile) is skipped: restarting it
    would run a process the engine no longer has."""
    done: list[ServiceOutcome] = []
    for i, svc in enumerate(svcs):
        if not current(svc):
            continue
        outcome = await restart_one(svc)
        done.append(outcome)
        why = None if outcome["ok"] else f"{svc.name} did not restart: {outcome['reason']}"
        why = why or await wait_up(svc, svc.spec.start_time + ROLLING_MARGIN)
        if why:
            rest = [s.name for s in svcs[i + 1:]]
            return {"ok": False, "restarted": [o["name"] for o in done], "services": done,
                    "error": f"rolling restart stopped: {why}"
                             + (f"; not restarted: {', '.join(rest)}" if rest else ""),
                    "untouched": rest}
    return {"ok": True, "restarted": [o["name"] for o in done], "services": done}
