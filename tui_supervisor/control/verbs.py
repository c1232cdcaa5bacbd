"""The client verbs of the command line (status, start/stop/restart, signal, logs, reload,
reopen-logs, incidents), each an async function of a SupervisorAPI that prints its result
and returns an exit code.
Errors are raised (UnknownService, ValueError, ...) for the CLI to turn into one line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from tui_supervisor.engine.api import SupervisorAPI, UnknownService
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.views import LogEvent, LogLine, Snapshot
from tui_supervisor.formatting import (
    fmt_bytes,
    fmt_duration,
    fmt_percent,
    fmt_ratio,
    fmt_seconds,
    fmt_usage,
    shown_state,
    state_colour,
    strip_ansi,
)

__all__ = ["fmt_bytes", "fmt_duration", "fmt_percent", "fmt_ratio", "fmt_seconds"]


def _out(text: str, file: TextIO | None = None) -> None:
    f = file or sys.stdout
    f.write(text)
    f.flush()


def probed(snap: Snapshot) -> bool:
    """A service has a health probe (then `status` has a HEALTH column)."""
    return any(s.get("probes") for s in snap["services"])


def status_header(snap: Snapshot) -> list[str]:
    """Columns of `status`; HEALTH only when a service has a probe, CPU and MEM only
    when the engine samples resources."""
    sampled = any(s.get("resources") for s in snap["services"])
    return ["NAME", "STATE", *(["HEALTH"] if probed(snap) else []), "PID", "UPTIME",
            *(["CPU", "MEM"] if sampled else []),
            "RESTARTS", "FAILURES", "AVAIL", "MTTR", "LAST EXIT"]


def status_rows(snap: Snapshot) -> list[list[str]]:
    sampled = any(s.get("resources") for s in snap["services"])
    health = probed(snap)
    rows = []
    for s in snap["services"]:
        last: Mapping[str, Any] = s.get("last_exit") or {}
        rel = s.get("reliability") or {}
        res = s.get("resources") or {}
        state = shown_state(s["state"], s.get("crash_looping"))
        if state in ("backoff", "fatal", "exited", "crash-loop", "waiting") and s.get("reason"):
            state = f"{state} ({s['reason']})"
        usage = list(fmt_usage(res)) if sampled else []
        shown = [s.get("health") or "-"] if health else []
        rows.append([s["name"], state, *shown, str(s["pid"] or "-"),
                     fmt_duration(s.get("uptime")),
                     *usage, str(s.get("restarts", 0)), str(s.get("failures", 0)),
                     fmt_ratio(rel.get("availability")), fmt_seconds(rel.get("mttr")),
                     last.get("text") or "-"])
    return rows


RIGHT = {"PID", "CPU", "MEM", "RESTARTS", "FAILURES", "AVAIL", "MTTR"}


def print_status(snap: Snapshot, file: TextIO | None = None) -> None:
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
    if eng.get("processes"):
        console.print(Text(f"processes known by {eng['processes']}"))
    if error := eng.get("config_error"):
        console.print(Text(config_error_line(error), style="bold red"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for h in status_header(snap):
        table.add_column(h, no_wrap=True, justify="right" if h in RIGHT else "left")
    for s, row in zip(snap["services"], status_rows(snap), strict=True):
        cells = [Text(c) for c in row]
        cells[1].stylize(state_colour(shown_state(s["state"], s.get("crash_looping"))))
        table.add_row(*cells)
    console.print(table)


UP = frozenset({"running", "daemonized", "completed"})
"""The states `status` counts as up (exit 0): doing its job, or done with it."""
NOT_ALL_RUNNING = 3
"""`status`'s exit when a service it shows should be up and is not (supervisorctl's)."""


def select(snap: Snapshot, names: Sequence[str]) -> Snapshot:
    """`snap` with only the named services, in the order named (UnknownService for a
    name the engine does not have)."""
    if not names:
        return snap
    by = {s["name"]: s for s in snap["services"]}
    chosen: dict[str, None] = {}
    for name in names:
        group = [] if name in by else [s["name"] for s in snap["services"]
                                       if s.get("group") == name]
        if name not in by and not group:
            raise UnknownService(name)
        chosen.update(dict.fromkeys(group or [name]))  # a replica group: its copies
    return {"engine": snap["engine"], "services": [by[n] for n in chosen]}


def status_code(snap: Snapshot, named: bool) -> int:
    """0, or NOT_ALL_RUNNING when a service shown is not up that should be: any named
    one, or (none named) one the engine is meant to keep up (`wanted`)."""
    down = [s for s in snap["services"]
            if s["state"] not in UP and (named or s.get("wanted", True))]
    return NOT_ALL_RUNNING if down else 0


def config_error_line(error: str) -> str:
    """The engine refused the config file as it is now: it runs the last good one."""
    return (f"config error (not applied: the engine runs the last good config; fix the "
            f"file, then `tui-supervisor reload`): {error}")


async def status(api: SupervisorAPI, *, as_json: bool, names: Sequence[str] = ()) -> int:
    snap = select(await api.snapshot(), names)
    if as_json:
        _out(json.dumps(snap, indent=2) + "\n")
    else:
        print_status(snap)
    return status_code(snap, bool(names))


def resolve(names: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    """The services a start/stop/restart means: None or ["all"] (supervisorctl's
    spelling, unless a service is called that) is every one. A replica group's name
    (`web`) goes as it is: the engine takes it as all its copies."""
    if names is None or (list(names) == ["all"] and "all" not in known):
        return list(known)
    return list(names)


def outcome_line(o: Mapping[str, Any]) -> str:
    """supervisorctl's words: `web: started`, `api: ERROR (command not found: x)`,
    `db: started (dependency of api)`, `api: waiting for db (ready)`,
    `api: stopped (depends on db)`."""
    if o.get("ok", True) and o.get("outcome") != "error":
        if o.get("outcome") == "waiting" and o.get("reason"):
            return f"{o['name']}: {o['reason']}"
        why = ""
        if o.get("dependency_of"):
            why = f" (dependency of {', '.join(o['dependency_of'])})"
        elif o.get("dependent_of"):
            why = f" (depends on {', '.join(o['dependent_of'])})"
        return f"{o['name']}: {o['outcome']}{why}"
    return f"{o['name']}: ERROR ({o.get('reason') or o.get('state')})"


async def control(api: SupervisorAPI, verb: str, names: Sequence[str] | None, *,
                  no_deps: bool = False, rolling: bool = False) -> int:
    """start/stop/restart NAME... (None or ["all"]: every service); a line a service
    saying what happened to it, exit 1 if anything failed. `no_deps` (start, stop):
    NAME alone, not its dependencies (start) or dependents (stop). `rolling`: a restart
    one at a time (an error line says where it stopped)."""
    result: Any
    if names is None or list(names) == ["all"]:
        names = resolve(names, [s["name"] for s in (await api.snapshot())["services"]])
    if rolling:
        result = await api.restart(list(names), rolling=True)
    elif no_deps:
        result = await getattr(api, verb)(list(names), no_deps=True)
    else:
        result = await getattr(api, verb)(list(names))
    outcomes = result.get("services")
    if outcomes is None:  # an engine from before per-service outcomes
        past = {"start": "started", "stop": "stopped", "restart": "restarted"}[verb]
        if result.get(past):
            _out(f"{past}: {', '.join(result[past])}\n")
        else:
            _out("nothing to start: already running\n" if verb == "start"
                 else "no services\n")
        return 0
    if not outcomes:
        _out("no services\n")
    for o in outcomes:
        _out(outcome_line(o) + "\n", sys.stdout if o.get("ok") else sys.stderr)
    if result.get("error"):
        _out(f"tui-supervisor: {result['error']}\n", sys.stderr)
    return 0 if result.get("ok", True) and all(o.get("ok") for o in outcomes) else 1


async def scale(api: SupervisorAPI, name: str, n: int) -> int:
    """`scale NAME N`: a line a copy started or stopped; exit 1 if it was refused."""
    r = await api.scale(name, n)
    if not r.get("ok"):
        _out(f"tui-supervisor: cannot scale {name}: {r.get('error')}\n", sys.stderr)
        return 1
    for started in r["started"]:
        _out(f"{started}: started\n")
    for stopped in r["stopped"]:
        _out(f"{stopped}: stopped\n")
    if not r["started"] and not r["stopped"]:
        _out(f"{name}: already {n} replicas\n")
    return 0


async def send_signal(api: SupervisorAPI, name: str, sig: str) -> int:
    r = await api.signal(name, sig)
    if not r.get("ok"):
        _out(f"tui-supervisor: {name} has no process to signal\n", sys.stderr)
        return 1
    _out(f"sent {r['signal']} to {name}\n")
    return 0


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody has reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


async def shutdown(api: SupervisorAPI, poll: float = 0.05) -> int:
    """Stop every service, then the engine; returns once its process is gone."""
    import asyncio

    r = await api.shutdown()
    if not r.get("ok"):
        _out(f"tui-supervisor: the engine cannot shut down: {r.get('error')}\n",
             sys.stderr)
        return 1
    pid = r["pid"]
    while not gone(pid):
        await asyncio.sleep(poll)
    _out("".join(f"{name}: stopped\n" for name in r["stopping"]) +
         f"engine (pid {pid}): shut down\n")
    return 0


_CHANGES = ("added", "removed", "restarted", "in_place", "settings")


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
    changes = cast(Mapping[str, list[str]], r)
    parts = [f"{k.replace('_', ' ')}: {', '.join(v)}" for k in _CHANGES
             if (v := changes.get(k))]
    _out("reloaded: " + ("; ".join(parts) if parts else "nothing changed") + "\n")
    return 0


async def reopen_logs(api: SupervisorAPI) -> int:
    r = await api.reopen_logs()
    for e in r["errors"]:
        _out(f"tui-supervisor: {e}\n", sys.stderr)
    _out(f"reopened {len(r['reopened'])} log files\n")
    return 0 if r["ok"] else 1


class _LogPrinter:
    """`NAME | text`, stderr lines marked `NAME | ! text` (as the headless console
    marks them), with `timestamps` led by the time the engine read them; escape
    sequences (colours) only for a terminal."""

    def __init__(self, names: Sequence[str], *, timestamps: bool = False,
                 tty: bool | None = None) -> None:
        self.width = max([len(n) for n in names] or [1])
        self.timestamps = timestamps
        self.tty = sys.stdout.isatty() if tty is None else tty

    def line(self, service: str, text: str, stream: str = "stdout", t: float = 0.0) -> str:
        stamp = time.strftime("%H:%M:%S ", time.localtime(t)) if self.timestamps else ""
        mark = "! " if stream == "stderr" else ""
        return f"{stamp}{service.ljust(self.width)} | {mark}" \
               f"{text if self.tty else strip_ansi(text)}\n"

    def history(self, lines: list[LogLine], cut: Mapping[str, int] | None = None) -> str:
        """History lines; with `cut` (a subscription's snapshot `log_offset`s), only
        those before it: the live events bring every line from there on."""
        return "".join(self.line(x["service"], x["text"], x.get("stream", ""), x["t"])
                       for x in lines
                       if cut is None or x["offset"] < cut.get(x["service"], 0))

    def event(self, ev: LogEvent) -> str:
        return "".join(self.line(ev["service"], text, ev["stream"], ev["t"])
                       for text in ev["lines"])


ENGINE_STOPPED = "the engine stopped: not reconnecting"
"""The reconnecting client's last word when no engine holds the config any more."""
GENERIC_LOSS = "engine went away"
"""How the reconnecting client's "lost" message for a mere disconnect starts."""


async def logs(api: SupervisorAPI, names: Sequence[str], n: int, follow: bool,
               timestamps: bool = False) -> int:
    """The last `n` lines of the named services (all if none), merged and prefixed; with
    `follow`, then every new line, across restarts, until the engine goes away (said in
    one line)."""
    if not follow:
        lines = await api.logs(list(names) or None, n)
        known = sorted({x["service"] for x in lines}) or names
        _out(_LogPrinter(known, timestamps=timestamps).history(lines))
        return 0
    it = await api.subscribe(logs=True)
    ended = ENGINE_STOPPED
    try:
        snap = await anext(it)
        assert snap["kind"] == "snapshot"
        known = [s["name"] for s in snap["services"]]
        cut = {s["name"]: s["log_offset"] for s in snap["services"]}
        # (UnknownService for a name that is no service; a replica group: its copies)
        if names:
            names = [s["name"] for s in select(
                {"engine": snap["engine"], "services": snap["services"]}, names)["services"]]
        wanted = set(names) if names else None
        p = _LogPrinter(names or known, timestamps=timestamps)
        history = await api.logs(list(names) or None, n) if n > 0 else []
        _out(p.history(history, cut))
        async for ev in it:
            if ev["kind"] == "log" and (wanted is None or ev["service"] in wanted):
                _out(p.event(ev))
            elif ev["kind"] == "notice" and ev.get("topic") == Topic.SUBSCRIBER_DROPPED:
                _out("tui-supervisor: log stream dropped: this terminal reads too slowly "
                     "(every line is in the log files)\n", sys.stderr)
                return 1
            elif ev["kind"] == "connection":  # a client that reconnects (a code reload)
                said = connection_line(ev)
                if said is not None:
                    _out(f"tui-supervisor: {said}\n", sys.stderr)
                if ev.get("state") == "gave_up":
                    ended = str(ev.get("message"))
        _out(f"tui-supervisor: {stream_end(ended)} ({time.strftime('%H:%M:%S')})\n",
             sys.stderr)
        return 0
    finally:
        await it.aclose()  # type: ignore[attr-defined]


def connection_line(ev: Mapping[str, Any]) -> str | None:
    """What `logs -f` says of a connection event, if anything: a mere disconnect is not
    worth a line by itself (a reconnection says it, or the stream's end does), nor is
    giving up (the stream's end says why)."""
    state, message = ev.get("state"), str(ev.get("message"))
    if state == "restored" or (state == "lost" and not message.startswith(GENERIC_LOSS)):
        return message
    return None


def stream_end(gave_up: str) -> str:
    """The last line of `logs -f`: "engine stopped", or why the stream ended otherwise."""
    return "engine stopped" if gave_up == ENGINE_STOPPED else f"log stream ended: {gave_up}"


def format_incident(inc: dict[str, Any]) -> str:
    """A header line (time, service, exit in words, uptime before it), then the last
    output lines before it, indented."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(inc["t"]))
    up = inc.get("uptime")
    took = "-" if up is None else fmt_duration(up) if up >= 1 else f"{up:.2f}s"
    head = f"{when}  {inc['service']}  {inc.get('kind', 'failure')}: {inc.get('text')} "
    if not inc.get("pid"):  # the spawn failed: no process, no uptime, no output
        return head + f"(restarts {inc.get('restarts')})\n    (nothing was spawned)\n"
    head += f"after {took} up (pid {inc.get('pid')}, restarts {inc.get('restarts')})\n"
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
