"""What outlives an engine process: the state file (which a hard-killed engine's successor
reads to clear its leftovers) and the handoff record (which a successor, in this process
or after an exec, continues from: `Supervisor.detach()` / `open(adopt=record)`).

Parts of `Supervisor`, split out for size: they read and restore the engine's fields.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_supervisor.config.replicas import keep_scaled
from tui_supervisor.config.schema import ServiceSpec
from tui_supervisor.engine import proc
from tui_supervisor.engine.events import Notice, Topic
from tui_supervisor.engine.runtime import write_state
from tui_supervisor.engine.service import Service

if TYPE_CHECKING:
    from tui_supervisor.engine.supervisor import Supervisor

STATE_WRITE_DELAY = 0.2
"""Seconds a change waits before the state file is rewritten (a burst costs one write)."""


class StateFile:
    """`<state_dir>/state.json`: the engine's pid and its services' live processes,
    rewritten a moment after any change."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    @property
    def path(self) -> Path:
        return self.sup.config.settings.state_dir / "state.json"  # (the config may change)

    def changed(self) -> None:
        """Something the file records changed: rewrite it soon."""
        if self._timer is None and not self._stopped and self.sup.ctx is not None:
            self._timer = self.sup.ctx.loop.call_later(STATE_WRITE_DELAY, self.write)

    def stop(self) -> None:
        """No more writes (the engine closes or hands over)."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def write(self) -> None:
        self._timer = None
        sup = self.sup
        services = {}
        for s in sup.services.values():
            if s.pid is not None:
                services[s.name] = {"pid": s.pid, "pgid": s.pgid,
                                    "starttime": proc.create_time(s.pid)}
        data = {"engine_pid": os.getpid(), "engine_starttime": proc.create_time(os.getpid()),
                "config": str(sup.config.path), "services": services}
        try:
            write_state(self.path, data)
        except OSError as e:
            sup._notice("error", f"cannot write state file {self.path}: {e.strerror}",
                        topic=Topic.STATE_FILE)


def handoff_record(sup: Supervisor) -> dict[str, Any]:
    """The JSON-serialisable record a successor continues from (see `restore`); the
    extensions write theirs (call after they stopped)."""
    return {
        "version": 1,
        "engine_pid": os.getpid(),
        "config_path": str(sup.config.path),
        "config_id": sup.config.config_id,
        # the base of every service's env, fixed at the first launch (reload/code.py)
        "environ": None if sup.config.environ is None else dict(sup.config.environ),
        "started_wall": sup.started_wall,
        "reloads": sup.reloads,
        "reload_failures": sup.reload_failures,
        "config_error": sup.config_error,
        "last_reload_seconds": sup.last_reload_seconds,
        # group -> [copies a `scale` chose, the file's replicas: then]
        "scaled": {group: list(counts) for group, counts in sup.scaled.items()},
        "services": [s.detach() for s in sup.services.values()],
        "lock_fd": sup.lock.fd if sup.lock else None,
        "extensions": {ext.name: ext.detach() for ext in sup.extensions},
        # [t, level, message, service, topic, data] (an older engine's record has
        # the first four only: Notice.from_record reads both)
        "notices": [n.as_record() for n in sup.notices],
        "lock_path": str(sup.lock.path) if sup.lock else None,
        # the services' cgroups (engine/cgroups.py): safe mode's stop ends them all
        "cgroups": str(sup.cgroups.group) if sup.cgroups is not None else None,
        # when the pipes stopped being read (CLOCK_MONOTONIC is the same in a successor
        # exec'd on this boot): the successor says how long that lasted
        "detached_mono": time.monotonic(),
    }


def restore(sup: Supervisor, record: dict[str, Any]) -> list[str]:
    """Continue `sup` (being opened: context made, no service yet) from a predecessor's
    `handoff_record`: its counters, notices, extensions and live services. Returns the
    adopted services the config no longer has (for the caller to stop)."""
    assert sup.ctx is not None
    sup.started_wall = record.get("started_wall", sup.started_wall)
    sup.reloads = record.get("reloads", 0)
    sup.reload_failures = record.get("reload_failures", 0)
    sup.config_error = record.get("config_error")
    sup.last_reload_seconds = record.get("last_reload_seconds")
    scaled = {group: (n, file_n) for group, (n, file_n) in record.get("scaled", {}).items()}
    sup.config, sup.scaled = keep_scaled(sup.config, scaled)  # before the services' specs
    sup.notices.extend(Notice.from_record(n) for n in record.get("notices", []))
    for ext in sup.extensions:
        if ext.name in record.get("extensions", {}):
            ext.adopt(record["extensions"][ext.name])
    for rec in record["services"]:
        spec = sup.config.services.get(rec["name"]) or ServiceSpec(
            name=rec["name"], argv=tuple(rec["argv"]), cwd=Path(rec["cwd"]))
        svc = Service(spec, sup.ctx)
        svc.adopt(rec)
        sup.services[spec.name] = svc
    return [n for n in sup.services if n not in sup.config.services]
