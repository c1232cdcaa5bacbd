"""The fake engine behind the picture tests: a SupervisorAPI that always tells the same
story (a fixed snapshot, log lines, history and incidents, no events), so a picture is the
same on every run; the behaviour is tested against real engines elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from tui_supervisor.engine.views import (
    CodeReloadResult,
    EventView,
    LogLine,
    ReloadResult,
    ReopenLogsResult,
    RestartResult,
    ScaleResult,
    ShutdownResult,
    SignalResult,
    Snapshot,
    StartResult,
    StopResult,
)

T0 = 1_790_000_000.0  # fixed wall clock (2026-09-21)


def _svc(name: str, state: str, pid: int | None, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name, "state": state, "reason": kw.pop("reason", ""), "pid": pid,
        "uptime": kw.pop("uptime", 3723.0 if pid else None), "restarts": 0, "failures": 0,
        "consecutive_failures": 0, "recent_failures": [], "last_exit": None,
        "backoff_remaining": None, "wanted": True, "command": ["python", "-m", name],
        "cwd": "/srv/app", "restart_policy": "always", "log_offset": 0,
        "crash_loop": {"max_failures": 5, "window": 60.0},
        "reliability": {"availability": 1.0, "mttr": None, "mtbf": None, "downtime": 0.0},
        "latency": {}, "incidents": {},
        "resources": {"procs": 1, "cpu_percent": 0.5, "rss_bytes": 20 << 20, "fds": 8,
                      "threads": 1, "sampled_at": T0},
    }
    base.update(kw)
    return base


SNAPSHOT: dict[str, Any] = {
    "engine": {"pid": 4242, "version": "0.1.0", "config": "/srv/app/tui-supervisor.yaml",
               "uptime": 3725.0, "reloads": 2, "reload_failures": 0,
               "resources": {"cpu_percent": 1.5, "rss_bytes": 38 << 20}},
    "services": [
        _svc("web", "running", 4301),
        _svc("worker", "backoff", None, restarts=4, failures=5, consecutive_failures=3,
             backoff_remaining=3.2, reason="exit code 3; restarting in 3.20s",
             last_exit={"text": "exit code 3", "code": 3, "signal": None, "t": T0 - 5,
                        "uptime": 12.5, "pid": 4302},
             recent_failures=[{"t": T0 - 5, "reason": "exit code 3", "starting": False}],
             reliability={"availability": 0.9871, "mttr": 1.84, "mtbf": 722.0,
                          "downtime": 48.0},
             incidents={"count": 1, "last": {"time": T0 - 5, "text": "exit code 3"}},
             resources={}),
        _svc("chatty", "running", 4303,
             resources={"procs": 1, "cpu_percent": 12.5, "rss_bytes": 31 << 20, "fds": 9,
                        "threads": 2, "sampled_at": T0}),
        _svc("nightly", "fatal", None, reason="crash loop: 5 failures in 60s",
             failures=5, reliability={"availability": 0.0, "mttr": None}, resources={}),
    ],
}

LINES = [
    ("web", "stdout", '127.0.0.1 - - "GET / HTTP/1.1" 200 -'),
    ("worker", "stdout", "job 41 done in 120 ms"),
    ("chatty", "stdout", "\x1b[32mINFO\x1b[0m request 17 GET /api/items 12ms"),
    ("worker", "stderr", "job 42: unexpected error, giving up"),
    ("chatty", "stdout", "\x1b[33mWARN\x1b[0m request 18 GET /healthz 71ms"),
    ("web", "stdout", '127.0.0.1 - - "GET /api/items HTTP/1.1" 200 -'),
]
HISTORY = {"cpu_percent": [0.5 + (i % 7) * 0.8 for i in range(120)],
           "rss_bytes": [float((20 << 20) + i * 4096) for i in range(120)],
           "procs": [1.0] * 120}


class FixedAPI:
    """A SupervisorAPI that always tells the same story (a partial one: the views hold
    what the pictures show; tests/typecheck_api.py checks the shape against the API)."""

    async def snapshot(self) -> Snapshot:
        return cast(Snapshot, SNAPSHOT)

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[EventView]:
        async def stream() -> AsyncIterator[EventView]:
            yield cast(EventView, {"kind": "snapshot", **SNAPSHOT})
            await asyncio.Event().wait()  # no events: a still picture

        return stream()

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[LogLine]:
        return [{"service": s, "offset": -1, "t": T0 - 10 + i, "stream": st, "text": text,
                 "size": len(text) + 1} for i, (s, st, text) in enumerate(LINES)]

    async def query(self, extension: str, what: str, args: dict[str, Any] | None = None
                    ) -> Any:
        if extension == "resources":
            return {"series": HISTORY, "interval": 1.0, "t_last": T0}
        if extension == "incidents" and (args or {}).get("service") not in (None, "worker"):
            return []
        if extension == "incidents":
            return [{"t": T0 - 5, "service": "worker", "pid": 4302, "code": 3,
                     "signal": None, "signal_name": None, "text": "exit code 3",
                     "uptime": 12.5, "kind": "crash", "state": "running", "restarts": 3,
                     "lines": [{"t": T0 - 6, "stream": "stdout", "text": "job 41 done"},
                               {"t": T0 - 5, "stream": "stderr",
                                "text": "job 42: unexpected error, giving up"}]}]
        raise ValueError("no such query")

    async def start(self, names: list[str], no_deps: bool = False) -> StartResult:
        return {"ok": True, "started": names}

    async def stop(self, names: list[str], no_deps: bool = False) -> StopResult:
        return {"ok": True, "stopped": names}

    async def restart(self, names: list[str], *, rolling: bool = False) -> RestartResult:
        return {"ok": True, "restarted": names}

    async def scale(self, name: str, n: int) -> ScaleResult:
        return {"ok": True, "group": name, "replicas": n, "started": [], "stopped": []}

    async def signal(self, name: str, sig: int | str) -> SignalResult:
        return {"ok": True, "signal": str(sig)}

    async def shutdown(self) -> ShutdownResult:
        return {"ok": True, "pid": 4242, "stopping": []}

    async def reload(self) -> ReloadResult:
        return {"ok": True}

    async def reload_code(self) -> CodeReloadResult:
        return {"ok": False, "errors": ["a fixed story: no code to reload"]}

    async def reopen_logs(self) -> ReopenLogsResult:
        return {"ok": True, "reopened": [], "errors": []}


async def settle_picture(pilot: Any) -> None:
    """Let a FixedAPI app come to rest before a picture: there is no single condition for
    "everything drawn", so a fixed pause (the story never changes, so nothing is missed)."""
    await pilot.pause(0.6)  # first snapshot, back-fill, detail data, one tick
    await pilot.wait_for_scheduled_animations()
