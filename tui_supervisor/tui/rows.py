"""The services table's cells, from a service's snapshot view: pure formatting, so the
table can diff cell by cell and tests can check exact text."""

from __future__ import annotations

import time
from typing import Any

from tui_supervisor.formatting import (
    fmt_duration,
    fmt_ratio,
    fmt_seconds,
    fmt_usage,
    shown_state,
)

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "NAME"), ("state", "STATE"), ("health", "HEALTH"), ("pid", "PID"),
    ("uptime", "UPTIME"), ("restarts", "RESTARTS"), ("failures", "FAILS"), ("mttr", "MTTR"),
    ("avail", "AVAIL"), ("cpu", "CPU"), ("mem", "MEM"), ("last", "LAST EXIT"),
)
"""(key, label) in display order."""


SORT_KEYS = ("name", "state", "cpu", "mem", "restarts", "failures", "uptime", "avail")
"""What `o` cycles through (config order first, then these)."""


def state_text(v: dict[str, Any], now: float | None = None) -> str:
    """The state in words; in backoff "restarting in 3.2s (4/5)" (consecutive failures out
    of the crash-loop budget); crash-looping, "crash-loop: retry in 28.0s"."""
    state = str(v.get("state", "?"))
    looping = shown_state(state, v.get("crash_looping")) != state
    if looping and state == "starting":
        return "crash-loop: starting"
    if state == "backoff":
        left = v.get("backoff_remaining")
        if left is not None and v.get("_seen_at") is not None:
            left = max(0.0, left - ((now or time.monotonic()) - v["_seen_at"]))
        if looping:
            return f"crash-loop: retry in {left:.1f}s" if left is not None else "crash-loop"
        budget = (v.get("crash_loop") or {}).get("max_failures")
        count = v.get("consecutive_failures")
        of = f" ({count}/{budget})" if count and budget else ""
        return f"restarting in {left:.1f}s{of}" if left is not None else f"backoff{of}"
    if state == "fatal":
        return f"fatal: {v.get('reason') or '?'}"
    if state == "waiting":  # the reason says for what: "waiting for db (ready)"
        reason = str(v.get("reason") or "")
        return reason if reason.startswith("waiting") else \
            f"waiting: {reason}" if reason else "waiting"
    return state


def health_text(v: dict[str, Any]) -> str:
    """The HEALTH cell: ready / unready / starting, "-" with no probe (or no process),
    "" from an engine that does not tell health at all (no `health` key)."""
    if "health" not in v:
        return ""
    return str(v.get("health") or "-")


def cells(v: dict[str, Any], now: float | None = None) -> dict[str, str]:
    """Every column's text for one service view."""
    rel = v.get("reliability") or {}
    res = v.get("resources") or {}
    last = v.get("last_exit") or {}
    usage = fmt_usage(res)
    uptime = v.get("uptime")
    if uptime is not None and v.get("_seen_at") is not None:
        uptime += (now or time.monotonic()) - v["_seen_at"]
    return {
        "name": str(v.get("name", "?")),
        "state": state_text(v, now),
        "health": health_text(v),
        "pid": str(v.get("pid") or "-"),
        "uptime": fmt_duration(uptime),
        "restarts": str(v.get("restarts", 0)),
        "failures": str(v.get("failures", 0)),
        "mttr": fmt_seconds(rel.get("mttr")),
        "avail": fmt_ratio(rel.get("availability")),
        "cpu": usage[0],
        "mem": usage[1],
        "last": str(last.get("text") or "-"),
    }


def sort_value(v: dict[str, Any], key: str) -> Any:
    """A comparable value for sorting rows by `key` (biggest first for numbers)."""
    rel = v.get("reliability") or {}
    res = v.get("resources") or {}
    if key == "name":
        return str(v.get("name", ""))
    if key == "state":
        return (str(v.get("state", "")), str(v.get("name", "")))
    numbers = {"cpu": res.get("cpu_percent"), "mem": res.get("rss_bytes"),
               "restarts": v.get("restarts"), "failures": v.get("failures"),
               "uptime": v.get("uptime"), "avail": rel.get("availability")}
    x = numbers.get(key)
    # numbers: descending (the busiest / least available first), None last
    if key == "avail":
        return (x is None, x if x is not None else 0.0)
    return (x is None, -(x or 0))
