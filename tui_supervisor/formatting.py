"""How numbers, times and states look, for every front (the CLI's tables, the headless
console, the dashboard): one place, so they agree. Stdlib only (no Rich, no Textual):
colours are names ("green", "bold red") each front renders its own way."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

CRASH_LOOP = "crash-loop"
"""How a crash-looping service's state shows between its attempts (`shown_state`)."""

STATE_COLOURS: dict[str, str] = {
    "running": "green", "daemonized": "green", "starting": "cyan", "stopping": "yellow",
    "completed": "green", "backoff": "yellow", "exited": "dim", "stopped": "dim",
    "fatal": "bold red", "waiting": "magenta",
    CRASH_LOOP: "bold red",
}
"""The one state palette: state (a `State` value, or CRASH_LOOP) -> colour name (Rich
style syntax)."""

STATE_SYMBOLS: dict[str, str] = {
    "running": "●", "daemonized": "●", "starting": "◐", "stopping": "◑", "completed": "✓",
    "backoff": "↻", "exited": "○", "stopped": "■", "fatal": "✖", "waiting": "…",
    CRASH_LOOP: "✖", "mixed": "◒",
}
"""The one badge table: state (or CRASH_LOOP, or a replica group's "mixed") -> a symbol
that carries the meaning without colour (NO_COLOR, a monochrome terminal, a screen
reader's text). Each is one cell wide."""

HEALTH_COLOURS: dict[str, str] = {"ready": "green", "unready": "bold yellow",
                                  "starting": "cyan"}
"""The health palette (`Service.health`: "starting" | "ready" | "unready"); the words
carry the meaning, so it reads the same without colour (NO_COLOR)."""

ANSI: dict[str, int] = {"green": 32, "cyan": 36, "yellow": 33, "dim": 90, "bold red": 91,
                        "magenta": 35, "bold yellow": 93}
"""The palette's colour names -> SGR codes, for a plain terminal (the headless console:
grey for dim, bright red for bold red)."""


def state_colour(state: str) -> str:
    """The palette's colour of a state ("" for one it does not know)."""
    return STATE_COLOURS.get(state, "")


def state_symbol(state: str) -> str:
    """The badge's symbol of a state ("?" for one it does not know)."""
    return STATE_SYMBOLS.get(state, "?")


def health_colour(health: str | None) -> str:
    """The palette's colour of a health word ("" for none or one it does not know)."""
    return HEALTH_COLOURS.get(health or "", "")


def shown_state(state: str, crash_looping: bool | None = False) -> str:
    """The state as every front shows it: CRASH_LOOP for a crash-looping service that is
    not up (waiting for its next attempt, or making it); else the state itself."""
    return CRASH_LOOP if crash_looping and state in ("backoff", "starting") else state


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


_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]*[0-~])?")


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences (colours, cursor moves, titles): what a
    service printed for a terminal, for a file or a pipe."""
    return _ESCAPE.sub("", text) if "\x1b" in text else text


def fmt_usage(resources: Mapping[str, Any] | None) -> tuple[str, str]:
    """(CPU, MEM) of a service's `resources` view; "-" for both when it has no process
    (stopped, exited): a stopped service uses nothing, it does not use 0.0% / 0B."""
    if not resources or resources.get("procs") == 0:
        return "-", "-"
    return fmt_percent(resources.get("cpu_percent")), fmt_bytes(resources.get("rss_bytes"))
