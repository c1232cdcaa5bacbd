"""A dead predecessor's leftovers: processes a hard-killed earlier engine of the same
config left running, found by their marker and by the state file, stopped before the new
engine starts its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_supervisor.config.schema import Config
from tui_supervisor.engine import proc
from tui_supervisor.engine.cgroups import Cgroups
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.runtime import read_state

LEFTOVER_TIMEOUT = 10.0

NoticeFn = Callable[..., None]
"""`Supervisor._notice`: (level, message, *, topic, data)."""


async def clear_leftovers(config: Config, state_path: Path, notice: NoticeFn,
                          cgroups: Cgroups | None = None) -> list[int]:
    """Stop processes a hard-killed earlier engine of this config left running (found
    by their marker, their cgroup, and by the state file's pid + start time); the pids
    found."""
    prefix = f"{config.config_id}/"
    instance = str(config.settings.runtime_dir)  # (another engine of this file: not ours)
    found = proc.pids_with_marker(prefix, instance)
    if cgroups is not None:
        for name in config.services:
            for pid in cgroups.procs(name):
                if proc.read_env(pid, proc.INSTANCE_VAR) in (None, instance):
                    found.setdefault(pid, prefix + name)
    prev: dict[str, Any] = read_state(state_path) or {}
    for info in (prev.get("services") or {}).values():
        pid = info.get("pid")
        if pid and proc.create_time(pid) == info.get("starttime"):
            found.setdefault(pid, prefix + "?")
    found.pop(os.getpid(), None)
    if not found:
        return []
    by_service: dict[str, list[int]] = {}
    for pid, m in sorted(found.items()):
        by_service.setdefault(m[len(prefix):], []).append(pid)
    listing = "; ".join(f"{n} (pid {', '.join(map(str, p))})"
                        for n, p in by_service.items())
    who = f"pid {prev['engine_pid']}" if prev.get("engine_pid") else "an earlier engine"
    notice("warning", f"{who} of this config died leaving {len(found)} processes "
           f"running: {listing}; stopping them before starting fresh",
           topic=Topic.LEFTOVERS, data={"pids": sorted(found), "services": by_service})
    results = await asyncio.gather(*(
        _stop_leftovers(config, name, pids) for name, pids in by_service.items()))
    alive = sorted(p for r in results for p in r)
    if alive:
        notice("error", f"could not stop leftovers: {alive}", topic=Topic.LEFTOVERS,
               data={"alive": alive})
    else:
        notice("info", f"stopped {len(found)} leftover processes", topic=Topic.LEFTOVERS,
               data={"stopped": sorted(found)})
    return sorted(found)


async def _stop_leftovers(config: Config, service: str, pids: list[int]) -> set[int]:
    """Stop signal (the service's, to each pid and its group), its timeout, SIGKILL."""
    spec = config.services.get(service)
    sig = spec.stop.signal if spec else _signal.SIGTERM
    timeout = min(spec.stop.timeout if spec else LEFTOVER_TIMEOUT, LEFTOVER_TIMEOUT)
    for pid in pids:
        st = proc.stat(pid)
        if st is not None and st.pgrp == pid:
            proc.signal_group(pid, sig)
        proc.signal_pid(pid, sig)
    alive = await _wait_gone(set(pids), timeout)
    if alive:
        for pid in alive:
            proc.signal_pid(pid, _signal.SIGKILL)
        alive = await _wait_gone(alive, 5.0)
    return alive


async def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if _exists(p)}
        if alive:
            await asyncio.sleep(0.02)
    return {p for p in alive if _exists(p)}


def _exists(pid: int) -> bool:
    st = proc.stat(pid)
    if st is not None and st.state == "Z" and st.ppid == os.getpid():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return st is not None and st.state != "Z"
