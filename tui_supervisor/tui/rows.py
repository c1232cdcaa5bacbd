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
    state_symbol,
)
from tui_supervisor.tui.store import TREND
from tui_supervisor.tui.trends import cpu_trend, mem_trend

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "NAME"), ("state", "STATE"), ("health", "HEALTH"), ("pid", "PID"),
    ("uptime", "UPTIME"), ("restarts", "RESTARTS"), ("restarts_1h", "1H"),
    ("failures", "FAILS"), ("mttr", "MTTR"), ("avail", "AVAIL"), ("cpu", "CPU"),
    ("cpu_trend", "CPU 5m"), ("mem", "MEM"), ("mem_trend", "MEM 5m"), ("last", "LAST EXIT"),
)
"""(key, label) of every column, in display order (`columns_for` picks those that fit)."""

WIDTHS = {"state": 28, "health": 10, "pid": 7, "uptime": 7, "restarts": 8, "restarts_1h": 4,
          "failures": 5, "mttr": 6, "avail": 7, "cpu": 6, "cpu_trend": 10, "mem": 7,
          "mem_trend": 10, "last": 14}
"""Fixed widths (cells are updated in place; the name column grows with the names)."""
TRENDS = ("cpu_trend", "mem_trend")
TREND_WIDE = 20
"""The trend columns' width when every column fits with room to spare."""
NAME_MIN = 8
PAD = 2
"""A DataTable cell's padding (one each side)."""
SCROLLBAR = 2
PRIORITY = ("name", "state", "cpu", "mem", "restarts", "restarts_1h", "health", "uptime",
            "cpu_trend", "mem_trend", "failures", "pid", "last", "avail", "mttr")
"""Columns most worth their room first: at 80 columns the table keeps what says whether
a service is well (state, usage, restarts), at 200 it shows everything."""


def columns_for(width: int, name_width: int = NAME_MIN) -> tuple[tuple[str, str, int], ...]:
    """(key, label, width) of the columns a table `width` cells wide shows, in display
    order: by PRIORITY while they fit whole (nothing cut mid-word; the name column takes
    `name_width`); the trend columns widen when everything fits with room left."""
    room = width - SCROLLBAR - max(name_width, NAME_MIN) - PAD
    chosen = {"name"}
    for key in PRIORITY[1:]:
        if WIDTHS[key] + PAD <= room:
            chosen.add(key)
            room -= WIDTHS[key] + PAD
    trend = WIDTHS[TRENDS[0]]
    if len(chosen) == len(COLUMNS):
        trend += max(0, min(TREND_WIDE - trend, room // len(TRENDS)))
    return tuple((key, label, trend if key in TRENDS else
                  WIDTHS.get(key, max(name_width, NAME_MIN)))
                 for key, label in COLUMNS if key in chosen)


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


def badge(v: dict[str, Any], now: float | None = None) -> str:
    """The STATE cell: the state's symbol, then its words ("● running", "↻ restarting
    in 3.2s (4/5)"): the symbol carries the meaning without colour."""
    shown = shown_state(str(v.get("state", "?")), v.get("crash_looping"))
    return f"{state_symbol(shown)} {state_text(v, now)}"


def cells(v: dict[str, Any], now: float | None = None, trend_width: int = WIDTHS["cpu_trend"]
          ) -> dict[str, str]:
    """Every column's text for one service view (trend cells `trend_width` wide, from the
    store's points under TREND; blank without them)."""
    rel = v.get("reliability") or {}
    res = v.get("resources") or {}
    last = v.get("last_exit") or {}
    usage = fmt_usage(res)
    uptime = v.get("uptime")
    if uptime is not None and v.get("_seen_at") is not None:
        uptime += (now or time.monotonic()) - v["_seen_at"]
    return {
        "name": str(v.get("name", "?")),
        "state": badge(v, now),
        "health": health_text(v),
        "pid": str(v.get("pid") or "-"),
        "uptime": fmt_duration(uptime),
        "restarts": str(v.get("restarts", 0)),
        "restarts_1h": str(v["restarts_1h"]) if "restarts_1h" in v else "-",
        "failures": str(v.get("failures", 0)),
        "mttr": fmt_seconds(rel.get("mttr")),
        "avail": fmt_ratio(rel.get("availability")),
        "cpu": usage[0],
        "mem": usage[1],
        "last": str(last.get("text") or "-"),
        **trend_cells(v.get(TREND), trend_width),
    }


def trend_cells(info: Any, width: int) -> dict[str, str]:
    """The CPU and MEM trend cells from a `ServiceInfo` (None: blank)."""
    if info is None:
        return {"cpu_trend": "", "mem_trend": ""}
    drawn = (info.trend_total, len(info.trend["cpu"]), width)
    if info.trend_text is not None and info.trend_text[0] == drawn:
        return info.trend_text[1]
    first = info.trend_first
    texts = {"cpu_trend": cpu_trend(info.trend["cpu"], width, first),
             "mem_trend": mem_trend(info.trend["mem"], width, first)}
    info.trend_text = (drawn, texts)
    return texts


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


# -- replica groups -----------------------------------------------------------------------
GROUP = "group:"
"""Row keys of group rows: "group:web" (a service's name never holds a colon)."""
UP = ("running", "daemonized")


def group_key(group: str) -> str:
    return GROUP + group


def group_of_key(key: str) -> str | None:
    """The group a row key names (None: a service's row)."""
    return key[len(GROUP):] if key.startswith(GROUP) else None


def arrange(names: list[str], views: dict[str, dict[str, Any]], folded: set[str]
            ) -> list[str]:
    """Row keys in display order: a replica group's row where its first replica (in
    `names`' order) would be, its replicas after it (none while it is folded)."""
    members: dict[str, list[str]] = {}
    for n in names:
        g = views[n].get("group")
        if g is not None:
            members.setdefault(str(g), []).append(n)
    out: list[str] = []
    for n in names:
        g = views[n].get("group")
        if g is None:
            out.append(n)
        elif group_key(str(g)) not in out:
            out.append(group_key(str(g)))
            if str(g) not in folded:
                out += members[str(g)]
    return out


def replicas_of(group: str, views: dict[str, dict[str, Any]]) -> list[str]:
    return [n for n, v in views.items() if v.get("group") == group]


def group_state(replicas: list[dict[str, Any]]) -> str:
    """The state a group row shows: "running" when all are up, "stopped"/"fatal"/...
    when all share a state, else "mixed" (its colour comes from it)."""
    states = {str(v.get("state")) for v in replicas}
    if states <= set(UP):
        return "running"
    return states.pop() if len(states) == 1 else "mixed"


def group_cells(group: str, replicas: list[dict[str, Any]], folded: bool) -> dict[str, str]:
    """A group row: "▸ web" folded / "▾ web" open, "2/3 running", "3/3 ready",
    restarts and failures summed; per-process columns left blank."""
    up = sum(1 for v in replicas if v.get("state") in UP)
    n = len(replicas)
    health = ""
    if any("health" in v for v in replicas):
        ready = sum(1 for v in replicas if v.get("health") == "ready")
        health = f"{ready}/{n} ready"
    blank = {key: "" for key, _ in COLUMNS}
    return {**blank, "name": f"{'▸' if folded else '▾'} {group}",
            "state": f"{state_symbol(group_state(replicas))} {up}/{n} running",
            "health": health,
            "restarts": str(sum(int(v.get("restarts") or 0) for v in replicas)),
            "restarts_1h": str(sum(int(v.get("restarts_1h") or 0) for v in replicas)),
            "failures": str(sum(int(v.get("failures") or 0) for v in replicas))}
