"""The event log: what happened, as one-liners (config and code reloads, service
lifecycle, notices). Pure: events (the dicts of `SupervisorAPI.subscribe`) in, `Entry`s
out; no Textual, no I/O. The app feeds every event it sees to an `EventLog` (bounded);
the event log screen shows it.

The engine keeps no history of state changes, so the log starts when the UI connects;
earlier, it shows only the engine's last notices (in the first snapshot: reloads, errors)
and crashes (the incidents it keeps), merged in by `add_history`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tui_supervisor.engine.events import Topic, exit_text
from tui_supervisor.formatting import fmt_seconds

MAX_ENTRIES = 1000
LEVELS = ("error", "warning", "success", "info", "dim")
"""Severities, most severe first: "success" marks a reload done, "dim" routine steps."""
SUPERVISOR = "supervisor"
"""Who an engine-wide entry is from."""

_RELOAD_WORDS = (("added", "added"), ("removed", "removed"), ("restarted", "restarted"),
                 ("in_place", "changed in place"), ("settings", "settings changed:"))


@dataclass(frozen=True, slots=True)
class Entry:
    t: float
    """Wall-clock time of the event."""
    level: str
    """One of LEVELS."""
    who: str
    """The service, or SUPERVISOR."""
    text: str

    def line(self) -> str:
        """The entry as one plain line, with local time."""
        return f"{clock_time(self.t)} {self.who}: {self.text}"


def clock_time(t: float) -> str:
    """HH:MM:SS, local time."""
    return time.strftime("%H:%M:%S", time.localtime(t))


def format_event(ev: Mapping[str, Any], *, earlier: bool = False) -> Entry | None:
    """One subscription event as an entry; None for what the log leaves out (output
    lines, snapshots, spawns and steps another event already tells — unless `earlier`:
    a notice from before the UI came, whose other events it never saw)."""
    kind = ev.get("kind")
    t = float(ev.get("t") or 0.0)
    who = str(ev.get("service") or SUPERVISOR)
    if kind == "notice":
        return _notice(t, who, ev, earlier)
    if kind == "state":
        return _state(t, who, ev)
    if kind == "exit":
        return _exit_entry(t, who, ev)
    if kind == "health":
        return _health(t, who, ev)
    if kind == "connection":  # an attached client's link ("restored": a new snapshot says)
        state, msg = ev.get("state"), str(ev.get("message", ""))
        return Entry(t, "warning", who, msg) if state == "lost" else \
            Entry(t, "error", who, f"gave up reconnecting: {msg}") if state == "gave_up" \
            else None
    return None


def format_incident(inc: Mapping[str, Any]) -> Entry:
    """A crash the engine kept (`incidents` query) as an entry."""
    what = "failed to start" if inc.get("kind") == "failed start" else "crashed"
    return Entry(float(inc.get("t") or 0.0), "error", str(inc.get("service", "?")),
                 f"{what}: {_exit_words(inc)}{_pid(inc)}")


def connected(t: float, snap: Mapping[str, Any], *, again: bool = False) -> Entry:
    """The entry that marks where the live log starts (`again`: a new subscription)."""
    e = snap.get("engine") or {}
    n = len(snap.get("services") or ())
    before = "while away" if again else "before it"
    return Entry(t, "dim", SUPERVISOR,
                 f"{'re' if again else ''}connected to engine pid {e.get('pid', '?')} ({n} "
                 f"services): the full log starts here; {before}, only notices and crashes")


def earlier_notices(snap: Mapping[str, Any]) -> list[Entry]:
    """The notices a subscription's first item carries (from before the UI came)."""
    entries = (format_event(n, earlier=True) for n in snap.get("notices") or ()
               if isinstance(n, dict))
    return [e for e in entries if e is not None]


def reload_summary(data: Mapping[str, Any] | None) -> str:
    """A config_reloaded notice's data ({"added": [..], "removed", "restarted",
    "in_place"}) as "config reloaded: added a, b; removed c; changed in place d"."""
    groups = [f"{words} {', '.join(map(str, (data or {}).get(key) or ()))}"
              for key, words in _RELOAD_WORDS if (data or {}).get(key)]
    return "config reloaded: " + ("; ".join(groups) if groups else "nothing changed")


def notice_text(n: Mapping[str, Any]) -> str:
    """What a notice says, as the dashboard words it (a config reload's summary from its
    data; else the engine's message)."""
    if n.get("topic") == Topic.CONFIG_RELOADED and isinstance(n.get("data"), Mapping):
        return reload_summary(n["data"])
    return str(n.get("message", ""))


def _notice(t: float, who: str, n: Mapping[str, Any], earlier: bool) -> Entry | None:
    topic, level = n.get("topic"), str(n.get("level") or "info")
    data = n.get("data") if isinstance(n.get("data"), Mapping) else None
    if topic == Topic.CRASH_LOOP and not earlier and (data is None or data.get(
            "crash_looping") or data.get("give_up")):
        return None  # its "fatal" or "backoff" state change says it (not: it recovered)
    if topic in (Topic.CONFIG_RELOADED, Topic.CODE_RELOADED):
        return Entry(t, "success", who, notice_text(n))
    return Entry(t, level if level in LEVELS else "info", who, notice_text(n))


def _state(t: float, who: str, ev: Mapping[str, Any]) -> Entry | None:
    new, reason, pid = str(ev.get("new")), str(ev.get("reason") or ""), ev.get("pid")
    why = f" ({reason})" if reason else ""
    if new == "starting":
        return Entry(t, "info", who, f"started pid {pid}{why}" if pid else f"starting{why}")
    if new == "running":  # at once when start_time is 0: only a start rule's pass counts
        return Entry(t, "dim", who, f"running{why}") if reason.startswith("up for") \
            else None
    if new == "backoff" and ev.get("crash_looping"):
        return Entry(t, "error", who, f"crash-loop: {reason}")
    if new == "backoff":
        return Entry(t, "warning", who, f"backoff: {reason}")
    if new == "fatal":
        return Entry(t, "error", who, f"fatal: {reason}")
    if new == "stopped":
        return Entry(t, "info", who, f"stopped{why}")
    if new == "daemonized":
        return Entry(t, "warning", who, f"daemonized{why}")
    if new == "completed":  # a job done: its clean exit is the success, not a crash
        return Entry(t, "success", who, f"completed{why}")
    if new == "waiting":  # the reason says for what: "waiting for db (ready)"
        return Entry(t, "info", who, reason if reason.startswith("waiting") else
                     f"waiting{why}")
    return None  # stopping (the stop ends in "stopped"), exited (the exit said it)


HEALTH_OUTPUT = 200
"""Characters of a probe's output an "unready" line keeps (its first line)."""


def _health(t: float, who: str, ev: Mapping[str, Any]) -> Entry | None:
    """A HealthChanged event: "ready", "unready: <the probe's output>", "starting"; the
    end of health (no process) is told by the state change."""
    health = ev.get("health")
    if health == "ready":
        return Entry(t, "success", who, "ready")
    if health == "unready":
        lines = str(ev.get("output") or "").strip().splitlines()
        first = lines[0][:HEALTH_OUTPUT] if lines else ""
        return Entry(t, "warning", who, f"unready: {first}" if first else "unready")
    if health == "starting":
        return Entry(t, "dim", who, "starting")
    return None


def _exit_entry(t: float, who: str, ev: Mapping[str, Any]) -> Entry:
    words = _exit_words(ev)
    pid = _pid(ev)
    if ev.get("requested"):
        return Entry(t, "dim", who, f"exited as asked: {words}{pid}")
    if ev.get("failure"):
        return Entry(t, "error", who, f"exited: {words}{pid}")
    return Entry(t, "info", who, f"exited: {words}{pid}")


def _pid(ev: Mapping[str, Any]) -> str:
    return f" (pid {ev['pid']})" if ev.get("pid") else ""  # 0: nothing was spawned


def _exit_words(ev: Mapping[str, Any]) -> str:
    """ "exit code 3 after 1.20s", "killed by SIGKILL after 4m12s"."""
    text = exit_text(ev.get("code"), ev.get("signal"), ev.get("detail"))
    if ev.get("cause") == "spawn":
        return text
    up = ev.get("uptime")
    return f"{text} after {fmt_seconds(up)}" if isinstance(up, int | float) else text


class EventLog:
    """The last `maxlen` entries, oldest first. `added` counts every entry ever added,
    `rebuilt` every reorder (history merged in): a view that saw `added` = n and the same
    `rebuilt` needs only `since(n)`."""

    def __init__(self, maxlen: int = MAX_ENTRIES) -> None:
        self.entries: deque[Entry] = deque(maxlen=maxlen)
        self.added = 0
        self.rebuilt = 0

    def add(self, ev: Mapping[str, Any]) -> Entry | None:
        """Record one subscription event (if the log tells it)."""
        if ev.get("kind") == "log":  # the hot path: output lines
            return None
        entry = format_event(ev)
        if entry is not None:
            self.append(entry)
        return entry

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.added += 1

    def add_history(self, entries: Iterable[Entry]) -> None:
        """Merge earlier entries in, by time (the newest kept if over the bound); those
        already in the log (seen live before a new subscription) are left out."""
        have = set(self.entries)
        old = [e for e in entries if e not in have]
        if not old:
            return
        merged = sorted([*old, *self.entries], key=lambda e: e.t)
        self.entries.clear()
        self.entries.extend(merged)
        self.added += len(old)
        self.rebuilt += 1

    def since(self, added: int) -> list[Entry]:
        """Entries added after the count was `added` (all that are still kept)."""
        n = min(self.added - added, len(self.entries))
        return list(self.entries)[len(self.entries) - n:] if n > 0 else []
