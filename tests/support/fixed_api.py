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
        "uptime": kw.pop("uptime", 3723.0 if pid else None), "restarts": 0, "restarts_1h": 0,
        "failures": 0, "consecutive_failures": 0, "recent_failures": [], "last_exit": None,
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
               "host": "web-01",
               "uptime": 3725.0, "reloads": 2, "reload_failures": 0,
               "resources": {"cpu_percent": 1.5, "rss_bytes": 38 << 20}},
    "services": [
        _svc("web", "running", 4301),
        _svc("worker", "backoff", None, restarts=4, restarts_1h=3, failures=5,
             consecutive_failures=3,
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

def _probe(kind: str, passing: bool, failures: int = 0, took: float = 0.002
           ) -> dict[str, Any]:
    return {"kind": kind, "passing": passing, "failures": failures, "last_duration": took}


def _dep(name: str, condition: str, met: bool) -> dict[str, Any]:
    return {"name": name, "condition": condition, "met": met}


def _replica(i: int, restarts: int = 0) -> dict[str, Any]:
    return _svc(f"web-{i}", "running", 4310 + i, group="web", replica=i, health="ready",
                health_output="200 OK", ready_since=T0 - 3600, restarts=restarts,
                restarts_1h=min(restarts, 1),
                probes={"readiness": _probe("http", True, took=0.004)},
                depends_on=[_dep("api", "started", True)])


HEALTH_SNAPSHOT: dict[str, Any] = {
    "engine": SNAPSHOT["engine"],
    "services": [
        _svc("db", "running", 4401, health="ready", health_output="", ready_since=T0 - 3700,
             probes={"readiness": _probe("tcp", True, took=0.0011)}, depends_on=[]),
        _svc("migrate", "running", 4402, uptime=42.0, health=None, probes={},
             restart_policy="never", depends_on=[_dep("db", "ready", True)]),
        _svc("api", "running", 4403, health="unready", ready_since=None,
             health_output="GET http://127.0.0.1:8080/healthz: 503 Service Unavailable\n"
                           '{"status": "degraded", "db": "connection pool exhausted '
                           '(32/32 in use), retrying"}',
             probes={"readiness": _probe("http", False, failures=4, took=0.031),
                     "liveness": _probe("exec", True, took=0.21)},
             depends_on=[_dep("db", "ready", True)]),
        _svc("worker", "waiting", None, uptime=None, resources={},
             reason="waiting for migrate (completed_successfully)", health=None,
             probes={"liveness": _probe("silence", True)},
             depends_on=[_dep("db", "ready", True),
                         _dep("migrate", "completed_successfully", False)]),
        _replica(0), _replica(1, restarts=2), _replica(2),
    ],
}
"""Issue 14's story: health probes, a dependency wait, a replica group (the keys of
`ServiceView` an older engine leaves out: `health`, `probes`, `depends_on`, `group`...)."""

LINES = [
    ("web", "stdout", '127.0.0.1 - - "GET / HTTP/1.1" 200 -'),
    ("worker", "stdout", "job 41 done in 120 ms"),
    ("chatty", "stdout", "\x1b[32mINFO\x1b[0m request 17 GET /api/items 12ms"),
    ("worker", "stderr", "job 42: unexpected error, giving up"),
    ("chatty", "stdout", "\x1b[33mWARN\x1b[0m request 18 GET /healthz 71ms"),
    ("web", "stdout", '127.0.0.1 - - "GET /api/items HTTP/1.1" 200 -'),
]
HISTORY: dict[str, list[float | None]] = {  # 10 minutes at 1 s; a crash 5 s before T0
    "cpu_percent": [None if 594 <= i < 596 else 0.5 + (i % 7) * 0.8 + (i % 120 > 100) * 6
                    for i in range(600)],
    "rss_bytes": [None if 594 <= i < 596 else float((20 << 20) + (i % 596) * 40960)
                  for i in range(600)],
    "procs": [0.0 if 594 <= i < 596 else 1.0 for i in range(600)],
    "probe_readiness_seconds": [0.002 + (i % 11) * 0.0004 + (i > 560) * 0.01
                                for i in range(600)],
    "ready": [None if 594 <= i < 596 else float(not 585 <= i < 597) for i in range(600)]}
MARKS = [[T0 - 5.5, "failure"], [T0 - 4.0, "restart"]]


class FixedAPI:
    """A SupervisorAPI that always tells the same story (a partial one: the views hold
    what the pictures show; tests/typecheck_api.py checks the shape against the API).
    `snap`: the story (SNAPSHOT, or HEALTH_SNAPSHOT); `calls` records the scale calls."""

    def __init__(self, snap: dict[str, Any] | None = None) -> None:
        self.snap = snap if snap is not None else SNAPSHOT
        self.calls: list[tuple[str, Any]] = []

    async def snapshot(self) -> Snapshot:
        return cast(Snapshot, self.snap)

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[EventView]:
        async def stream() -> AsyncIterator[EventView]:
            yield cast(EventView, {"kind": "snapshot", **self.snap})
            await asyncio.Event().wait()  # no events: a still picture

        return stream()

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[LogLine]:
        return [{"service": s, "offset": -1, "t": T0 - 10 + i, "stream": st, "text": text,
                 "size": len(text) + 1} for i, (s, st, text) in enumerate(LINES)]

    async def query(self, extension: str, what: str, args: dict[str, Any] | None = None
                    ) -> Any:
        if extension == "resources":
            return {"series": HISTORY, "interval": 1.0, "t_last": T0, "marks": MARKS}
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

    async def scale(self, name: str, n: int) -> ScaleResult:
        """`SupervisorAPI.scale`, recorded in `calls` (the story stays put)."""
        self.calls.append(("scale", (name, n)))
        have = sorted(int(s["replica"]) for s in self.snap["services"]
                      if s.get("group") == name)
        return {"ok": True, "group": name, "replicas": n,
                "started": [f"{name}-{i}" for i in range(len(have), n)],
                "stopped": [f"{name}-{i}" for i in range(n, len(have))][::-1]}


async def settle_picture(pilot: Any) -> None:
    """Let a FixedAPI app come to rest before a picture: there is no single condition for
    "everything drawn", so a fixed pause (the story never changes, so nothing is missed)."""
    await pilot.pause(0.6)  # first snapshot, back-fill, detail data, one tick
    await pilot.wait_for_scheduled_animations()
