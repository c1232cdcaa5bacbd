"""The client verbs of the command line (status, start/stop/restart, signal, logs, reload,
incidents), each an async function of a SupervisorAPI that prints its result and returns
an exit code.
Errors are raised (UnknownService, ValueError, ...) for the CLI to turn into one line."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from tui_supervisor.engine.api import SupervisorAPI, UnknownService


def _out(text: str, file: TextIO | None = None) -> None:
    f = file or sys.stdout
    f.write(text)
    f.flush()


def fmt_duration(seconds: float | None) -> str:
    """3s, 4m12s, 2h03m, 5d02h."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_seconds(seconds: float | None) -> str:
    """A short time that keeps sub-second precision: 850ms, 2.35s, 4m12s."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    return fmt_duration(seconds)


def fmt_ratio(ratio: float | None) -> str:
    """Availability as a percentage, rounded down (99.996% shows 99.99%, never 100%)."""
    if ratio is None:
        return "-"
    if ratio >= 1:
        return "100%"
    return f"{math.floor(ratio * 10000) / 100:.2f}%"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return "-"  # unreachable


def fmt_percent(p: float | None) -> str:
    return "-" if p is None else f"{p:.1f}%"


def status_header(snap: dict[str, Any]) -> list[str]:
    """Columns of `status`; CPU and MEM only when the engine samples resources."""
    sampled = any(s.get("resources") for s in snap["services"])
    return ["NAME", "STATE", "PID", "UPTIME", *(["CPU", "MEM"] if sampled else []),
            "RESTARTS", "FAILURES", "AVAIL", "MTTR", "LAST EXIT"]


def status_rows(snap: dict[str, Any]) -> list[list[str]]:
    sampled = any(s.get("resources") for s in snap["services"])
    rows = []
    for s in snap["services"]:
        last = s.get("last_exit") or {}
        rel = s.get("reliability") or {}
        res = s.get("resources") or {}
        state = s["state"]
        if state in ("backoff", "fatal", "exited") and s.get("reason"):
            state = f"{state} ({s['reason']})"
        usage = [fmt_percent(res.get("cpu_percent")), fmt_bytes(res.get("rss_bytes"))] \
            if sampled else []
        rows.append([s["name"], state, str(s["pid"] or "-"), fmt_duration(s.get("uptime")),
                     *usage, str(s.get("restarts", 0)), str(s.get("failures", 0)),
                     fmt_ratio(rel.get("availability")), fmt_seconds(rel.get("mttr")),
                     last.get("text") or "-"])
    return rows


RIGHT = {"PID", "CPU", "MEM", "RESTARTS", "FAILURES", "AVAIL", "MTTR"}
STATE_STYLE = {"running": "green", "daemonized": "green", "starting": "cyan",
               "stopping": "yellow", "backoff": "yellow", "exited": "dim", "stopped": "dim",
               "fatal": "bold red"}


def print_status(snap: dict[str, Any], file: TextIO | None = None) -> None:
    """The snapshot as a table (Rich; plain when not a terminal or NO_COLOR is set)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    f = file or sys.stdout
    tty = f.isatty()
    console = Console(file=f, width=None if tty else 250, highlight=False, soft_wrap=False)
    eng = snap["engine"]
    console.print(Text(f"engine pid {eng['pid']}, up {fmt_duration(eng['uptime'])}, "
                       f"{len(snap['services'])} services, config {eng['config']}"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for h in status_header(snap):
        table.add_column(h, no_wrap=True, justify="right" if h in RIGHT else "left")
    for s, row in zip(snap["services"], status_rows(snap), strict=True):
        cells = [Text(c) for c in row]
        cells[1].stylize(STATE_STYLE.get(s["state"], ""))
        table.add_row(*cells)
    console.print(table)


async def status(api: SupervisorAPI, *, as_json: bool) -> int:
    snap = await api.snapshot()
    if as_json:
        _out(json.dumps(snap, indent=2) + "\n")
    else:
        print_status(snap)
    return 0


async def control(api: SupervisorAPI, verb: str, names: Sequence[str] | None) -> int:
    """start/stop/restart NAME... (None: every service)."""
    if names is None:
        names = [s["name"] for s in (await api.snapshot())["services"]]
    result = await getattr(api, verb)(list(names))
    past = {"start": "started", "stop": "stopped", "restart": "restarted"}[verb]
    if result.get(past):
        _out(f"{past}: {', '.join(result[past])}\n")
    else:
        _out("nothing to start: already running\n" if verb == "start" else "no services\n")
    return 0


async def send_signal(api: SupervisorAPI, name: str, sig: str) -> int:
    r = await api.signal(name, sig)
    if not r.get("ok"):
        _out(f"tui-supervisor: {name} has no process to signal\n", sys.stderr)
        return 1
    _out(f"sent {r['signal']} to {name}\n")
    return 0


async def reload(api: SupervisorAPI, code: bool = False) -> int:
    if code:
        r = await api.reload_code()
        if not r.get("ok"):
            _out("tui-supervisor: code not reloaded, nothing changed:\n" +
                 "".join(f"{e}\n" for e in r.get("errors", [])), sys.stderr)
            return 1
        _out("code checked; the engine re-executes itself with it (services kept)\n")
        return 0
    r = await api.reload()
    if not r.get("ok"):
        _out("tui-supervisor: config not reloaded, nothing changed:\n" +
             "".join(f"{e}\n" for e in r.get("errors", [])), sys.stderr)
        return 1
    parts = [f"{k.replace('_', ' ')}: {', '.join(v)}" for k, v in r.items()
             if k != "ok" and v]
    _out("reloaded: " + ("; ".join(parts) if parts else "nothing changed") + "\n")
    return 0


class _LogPrinter:
    def __init__(self, names: Sequence[str]) -> None:
        self.width = max([len(n) for n in names] or [1])
        self.last_start: dict[str, int] = {}
        """Per service: the byte offset of the last line printed (history and live
        overlap; offsets tell which lines are new)."""

    def line(self, service: str, offset: int, text: str) -> str:
        self.last_start[service] = offset
        return f"{service.ljust(self.width)} | {text}\n"

    def event(self, ev: dict[str, Any]) -> str:
        svc, off, out = ev["service"], ev["offset"], []
        seen = self.last_start.get(svc, -1)
        for text in ev["lines"]:
            if off > seen:
                out.append(self.line(svc, off, text))
            off += len(text.encode()) + 1
        return "".join(out)


async def logs(api: SupervisorAPI, names: Sequence[str], n: int, follow: bool) -> int:
    """The last `n` lines of the named services (all if none), merged and prefixed; with
    `follow`, then every new line, across restarts, until the engine goes away."""
    if not follow:
        lines = await api.logs(list(names) or None, n)
        known = names or sorted({x["service"] for x in lines})
        p = _LogPrinter(known)
        _out("".join(p.line(x["service"], x["offset"], x["text"]) for x in lines))
        return 0
    it = await api.subscribe(logs=True)
    try:
        snap = await anext(it)
        known = [s["name"] for s in snap["services"]]
        for name in names:
            if name not in known:
                raise UnknownService(name)
        wanted = set(names) if names else None
        p = _LogPrinter(names or known)
        history = await api.logs(list(names) or None, n) if n > 0 else []
        _out("".join(p.line(x["service"], x["offset"], x["text"]) for x in history))
        async for ev in it:
            kind = ev.get("kind")
            if kind == "log" and (wanted is None or ev["service"] in wanted):
                _out(p.event(ev))
            elif kind == "notice" and ev.get("message", "").startswith("subscriber too slow"):
                _out("tui-supervisor: log stream dropped: this terminal reads too slowly "
                     "(every line is in the log files)\n", sys.stderr)
                return 1
            elif kind == "connection":  # a client that reconnects (a code reload)
                _out(f"tui-supervisor: {ev.get('message')}\n", sys.stderr)
        _out(f"tui-supervisor: engine stopped ({time.strftime('%H:%M:%S')})\n", sys.stderr)
        return 0
    finally:
        await it.aclose()  # type: ignore[attr-defined]


def format_incident(inc: dict[str, Any]) -> str:
    """A header line (time, service, exit in words, uptime before it), then the last
    output lines before it, indented."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(inc["t"]))
    up = inc.get("uptime")
    took = "-" if up is None else fmt_duration(up) if up >= 1 else f"{up:.2f}s"
    head = (f"{when}  {inc['service']}  {inc.get('kind', 'failure')}: {inc.get('text')} "
            f"after {took} up (pid {inc.get('pid')}, restarts {inc.get('restarts')})\n")
    body = "".join(f"    {str(x.get('stream', '')).removeprefix('std')} | {x.get('text')}\n"
                   for x in inc.get("lines") or [])
    return head + (body or "    (no output)\n")


def print_incidents(items: list[dict[str, Any]], *, as_json: bool) -> int:
    if as_json:
        _out("".join(json.dumps(x) + "\n" for x in items))
    else:
        _out("".join(map(format_incident, items)) if items else "no incidents\n")
    return 0


async def incidents(api: SupervisorAPI, name: str | None, n: int, *, as_json: bool) -> int:
    """The last `n` incidents (of `name`, or all), newest last, from the running engine."""
    items = await api.query("incidents", "list", {"service": name, "n": n})
    return print_incidents(items, as_json=as_json)


def incidents_from_file(state_dir: Path, known: Sequence[str], name: str | None, n: int,
                        *, as_json: bool) -> int:
    """The same, read from `<state_dir>/incidents.jsonl` (no engine running)."""
    from tui_supervisor.metrics.incidents import FILE_NAME, IncidentBook, IncidentFile

    book = IncidentBook(per_service=10**9, overall=10**9)
    book.extend(IncidentFile(state_dir / FILE_NAME).load())
    if name is not None and name not in known and name not in book.services():
        raise UnknownService(name)
    if not as_json:
        _out(f"(no engine running: from {state_dir / FILE_NAME})\n", sys.stderr)
    return print_incidents(book.list(name, n), as_json=as_json)
