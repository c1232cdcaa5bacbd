"""What supervisord, PM2 and docker compose users write, in this config's words.

`PEERS` maps their per-program keys to ours (or says there is none); the loader uses it
for an unknown service key before any fuzzy did-you-mean (`autorestart` is supervisord's
and PM2's `restart`, not a typo of `autostart`). `restart_value` says what to write for
compose's restart values. README's "Coming from supervisord / PM2 / compose" table is
`markdown_table()` (tests/test_config_peers.py keeps them equal). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tui_supervisor.config.units import show

SUPERVISORD, PM2, COMPOSE = "supervisord", "PM2", "compose"
LATER = "not supported yet (issue 14)"
"""The reason given for keys whose feature is planned (none left since issue 14)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """One key of another tool's program/app/service entry."""

    key: str
    tools: tuple[str, ...]
    ours: str | None
    """Our key path (`stop.timeout`), or None: no equivalent."""
    note: str = ""
    """Why or how (or, with `ours` None, what to do instead)."""
    value: Callable[[Any], str | None] | None = None
    """Their value -> the value to write in `ours` (None: cannot say)."""
    later: bool = False
    """No equivalent yet, planned (`LATER`)."""


def _millis(value: Any) -> str | None:
    """PM2 counts milliseconds where a bare number here is seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value}ms"
    return None


def _autorestart(value: Any) -> str | None:
    return {True: "always", False: "never", "unexpected": "on-failure"}.get(value)


def _same(value: Any) -> str | None:
    """A scalar written the same way (sizes, paths, signals, counts)."""
    if isinstance(value, str) and value.strip():
        return show(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _seconds(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value}s"
    return None


_LOGS = ("stdout and stderr both go to log_dir/NAME.log (rotated: log.max_bytes, "
         "log.backups); `tui-supervisor logs NAME` prints them")
_GIVE_UP = ("with crash_loop.give_up: true, the service goes fatal after that many "
            "failures inside crash_loop.window")


def _count(value: Any) -> str | None:
    """A replica count (PM2's `max`/-1, one per CPU, has no fixed equivalent)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return str(value)
    return None


_REPLICAS = "copies web-0 ... web-(N-1); ${REPLICA} is the copy's number (0-based)"

PEERS: tuple[Peer, ...] = (
    Peer("command", (SUPERVISORD, COMPOSE), "command", "the same key"),
    Peer("user", (SUPERVISORD, COMPOSE), "user",
         "the same key (only when the supervisor runs as root)"),
    Peer("cwd", (PM2,), "cwd", "the same key"),
    Peer("env", (PM2,), "env", "the same key: a mapping"),
    Peer("env_file", (COMPOSE,), "env_file", "the same key: a path or a list"),
    Peer("restart", (COMPOSE,), "restart",
         "no -> never, always -> always, on-failure -> on-failure, unless-stopped -> always"),
    Peer("autostart", (SUPERVISORD,), "autostart", "the same key"),
    Peer("directory", (SUPERVISORD,), "cwd", value=_same),
    Peer("working_dir", (COMPOSE,), "cwd", value=_same),
    Peer("environment", (SUPERVISORD, COMPOSE), "env", "a mapping: env: {KEY: value}"),
    Peer("autorestart", (SUPERVISORD, PM2), "restart",
         "true -> always, unexpected -> on-failure, false -> never", value=_autorestart),
    Peer("startsecs", (SUPERVISORD,), "start_time", "a duration", value=_seconds),
    Peer("min_uptime", (PM2,), "start_time", "PM2 counts milliseconds", value=_millis),
    Peer("startretries", (SUPERVISORD,), "crash_loop.max_failures",
         _GIVE_UP),
    Peer("max_restarts", (PM2,), "crash_loop.max_failures",
         _GIVE_UP),
    Peer("restart_delay", (PM2,), "backoff.initial",
         "PM2 counts milliseconds; the delay then grows by backoff.factor", value=_millis),
    Peer("stopsignal", (SUPERVISORD,), "stop.signal", value=_same),
    Peer("stop_signal", (COMPOSE,), "stop.signal", value=_same),
    Peer("stopwaitsecs", (SUPERVISORD,), "stop.timeout", "then SIGKILL", value=_seconds),
    Peer("kill_timeout", (PM2,), "stop.timeout", "PM2 counts milliseconds", value=_millis),
    Peer("stop_grace_period", (COMPOSE,), "stop.timeout", "then SIGKILL", value=_same),
    Peer("exitcodes", (SUPERVISORD,), "success_codes", "a list of exit codes"),
    Peer("max_memory_restart", (PM2,), "limits.memory",
         "the whole process tree's RSS, checked at every sample", value=_same),
    Peer("script", (PM2,), "command", "with its args: command: [node, app.js, --port, '80']"),
    Peer("args", (PM2,), "command", "the arguments go in command, after the program"),
    Peer("interpreter", (PM2,), "command", "the interpreter goes first: command: [node, app.js]"),
    Peer("entrypoint", (COMPOSE,), "command", "entrypoint and command together are command"),
    Peer("numprocs", (SUPERVISORD,), "replicas",
         _REPLICAS + "; write ${REPLICA} for %(process_num)s", value=_count),
    Peer("instances", (PM2,), "replicas",
         _REPLICAS + " (NODE_APP_INSTANCE: the env var REPLICA)", value=_count),
    Peer("scale", (COMPOSE,), "replicas", _REPLICAS, value=_count),
    Peer("healthcheck", (COMPOSE,), "health",
         "health: {liveness: {exec: [CMD], period: 30s}} (compose's test, interval)"),
    Peer("depends_on", (COMPOSE,), "depends_on",
         "the same key: a list, or {name: {condition, restart, timeout}}"),
    Peer("priority", (SUPERVISORD,), "depends_on",
         "name what must be up first: depends_on: [db]"),
    Peer("cron_restart", (PM2,), None,
         "run `tui-supervisor restart NAME` from cron or a systemd timer"),
    Peer("redirect_stderr", (SUPERVISORD,), None, _LOGS),
    Peer("stdout_logfile", (SUPERVISORD,), None, _LOGS),
    Peer("stderr_logfile", (SUPERVISORD,), None, _LOGS),
    Peer("stdout_logfile_maxbytes", (SUPERVISORD,), "log.max_bytes", value=_same),
    Peer("stdout_logfile_backups", (SUPERVISORD,), "log.backups", value=_same),
    Peer("out_file", (PM2,), None, _LOGS),
    Peer("error_file", (PM2,), None, _LOGS),
    Peer("log_file", (PM2,), None, _LOGS),
    Peer("image", (COMPOSE,), None, "tui-supervisor runs programs, not containers: "
         "command: [the program, its args]"),
)
BY_KEY = {p.key: p for p in PEERS}


def _whose(peer: Peer) -> str:
    return " and ".join(f"{tool}'s" for tool in peer.tools) + f" {peer.key}"


def peer_advice(key: str, value: Any) -> str | None:
    """For an unknown service key that another tool uses: what it is and what to write
    instead (`(supervisord's autorestart) — use restart: always`); None otherwise."""
    peer = BY_KEY.get(key)
    if peer is None or peer.ours == key:
        return None
    if peer.ours is None:
        head = LATER if peer.later else "not supported"
        return f"({_whose(peer)}) — {head}: {peer.note}"
    translated = peer.value(value) if peer.value else None
    if translated is not None:
        return f"({_whose(peer)}) — use {peer.ours}: {translated}"
    if peer.ours == "restart":
        return f"({_whose(peer)}) — use restart: always | on-failure | never ({peer.note})"
    return f"({_whose(peer)}) — use {peer.ours}" + (f" ({peer.note})" if peer.note else "")


def restart_value(value: Any) -> str | None:
    """For a `restart:` value that is compose's (or YAML's `no`): what to write instead."""
    if value is False:
        return "got false (YAML reads a bare no as false) — write restart: never"
    if value is True:
        return "got true — write restart: always"
    if value == "no":
        return "'no' is compose's — write restart: never"
    if value == "unless-stopped":
        return ("'unless-stopped' is compose's — write restart: always "
                "(a stop you ask for is never undone)")
    if isinstance(value, str) and value.startswith("on-failure:"):
        count = value.partition(":")[2]
        return (f"{show(value)} is compose's — write restart: on-failure and crash_loop: "
                f"{{max_failures: {count}, give_up: true}}")
    return None


def markdown_table() -> str:
    """README's table: their key, whose, ours."""
    rows = ["| their key | in | write here |", "| --- | --- | --- |"]
    for peer in PEERS:
        if peer.ours is None:
            ours = (LATER if peer.later else "not supported") + f": {peer.note}"
        else:
            ours = f"`{peer.ours}`" + (f" ({peer.note})" if peer.note else "")
        rows.append(f"| `{peer.key}` | {', '.join(peer.tools)} | {ours} |")
    return "\n".join(rows)
