"""Code reload by exec handoff (docs/ARCHITECTURE.md §6): check the new code, hand
the engine's state to a new image of this same process, and pick it up there.

The process keeps its PID, so the services stay its children; their pipes are inherited
(marked inheritable for the exec only), the detach record goes through a 0600 file whose
path is in TUISUP_HANDOFF (popped at start-up). Services never see it: their env is
based on the environment of the engine's first launch, which the record carries on
(`engine_environ`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tui_supervisor.engine.events import Notice, Topic
from tui_supervisor.engine.runtime import others_can_write
from tui_supervisor.reload.preflight import preflight as _preflight
from tui_supervisor.reload.preflight import start_warm, stop_warm
from tui_supervisor.reload.safe import (
    BOOT_MODULE,
    HANDOFF_VAR,
    execv_keeping_usr1,
    record_fds,
)
from tui_supervisor.reload.watch import Watcher

START_CWD = os.getcwd()
"""Where the process started: `python -m` and relative paths resolve against it."""
PACKAGE = Path(__file__).resolve().parent.parent
BOOT_SOURCE = (Path(__file__).parent / "safe.py").read_bytes()
"""The start-up guard as this image loaded it: written to the runtime dir and exec'd, so
an edit to safe.py cannot break the next start-up (it is used by the one after)."""


def launch_info() -> dict[str, Any] | None:
    """How this program was launched, for the boot guard to run it the same way: the
    interpreter's options, `-m module` or the script, argv, sys.path[0]. None for a form
    it cannot repeat (e.g. `python -c`): then the exec repeats sys.orig_argv unguarded."""
    orig, argv = list(sys.orig_argv), list(sys.argv)
    k = len(orig) - len(argv)
    if k < 1 or not argv:
        return None
    opts, first = orig[1:k], orig[k]
    module = None
    if opts and opts[-1] == "-m":
        module, opts = first, opts[:-1]
    elif first.startswith("-m") and len(first) > 2:
        module = first[2:]
    elif first.startswith("-") or not os.path.exists(argv[0]):
        return None
    return {"opts": opts, "module": module, "argv": argv, "orig_argv": orig,
            "path0": sys.path[0] if sys.path else "", "cwd": START_CWD,
            "package": str(PACKAGE)}


LAUNCH = launch_info()


def adopted() -> None:
    """This image now carries the services: tell the boot guard (if it started us) to let
    go of its safety copies of their fds."""
    hook = sys.modules.get(BOOT_MODULE)
    if hook is not None:
        hook.adopted()


async def preflight(config_path: str | os.PathLike[str] | None = None) -> str | None:
    """None if the code on disk is fit to exec into (reload/preflight.py); else why not."""
    return await _preflight(config_path, [sys.executable, *(LAUNCH or {}).get("opts", [])],
                            START_CWD)


async def checked_reload(config_path: Path, then: Callable[[], object]) -> dict[str, Any]:
    """An engine's `code_reloader`: the pre-flight; if it fails, why (nothing changes);
    else `then()` a moment later (once the reply is on its way) starts the hand-over."""
    err = await preflight(config_path)
    if err is not None:
        return {"ok": False, "errors": [err]}
    asyncio.get_running_loop().call_later(0.05, then)
    return {"ok": True}


INTERNAL_VARS = frozenset({HANDOFF_VAR})
"""Variables the supervisor sets in its own environment: never part of a service's."""
_handoff: list[dict[str, Any] | None] = []
"""The predecessor's record once read ([] until then): read once per process."""


def pending_handoff() -> dict[str, Any] | None:
    """The predecessor's record if this process is a code reload's new image, else None.
    Read at the first call: its variable leaves our environment and its file is removed
    (an error is raised: this image cannot go on, the boot guard's safe mode takes over)."""
    if not _handoff:
        path = os.environ.pop(HANDOFF_VAR, None)
        record = None
        if path:
            try:
                with open(path) as f:
                    record = json.load(f)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        _handoff.append(record)
    return _handoff[0]


def engine_environ() -> dict[str, str]:
    """The environment the services' env is based on: the one of the engine's first
    launch, carried in the hand-off record across any number of code reloads (this
    image's own has the hand-off variable, and whatever an exec adds); at a first launch,
    ours without the supervisor's internal variables. Call before loading the config."""
    record = pending_handoff()
    carried = record.get("environ") if record is not None else None
    if isinstance(carried, dict):
        return {str(k): str(v) for k, v in carried.items()}
    return {k: v for k, v in os.environ.items() if k not in INTERNAL_VARS}


def handoff_mode() -> str | None:
    """"hosted" if this process is the new image of a dashboard's engine, "headless" for
    a headless one, None if it is no code reload (the record stays for `take_handoff`)."""
    record = pending_handoff()
    if record is None:
        return None
    return str((record.get("host") or {}).get("mode") or "headless")


def exec_self(record: dict[str, Any], runtime_dir: Path) -> OSError:
    """Write the record, exec this program again; returns only if the exec failed (the
    caller then adopts the record in-process: services are never dropped)."""
    path = runtime_dir / "handoff.json"
    boot = runtime_dir / "boot.py"
    if LAUNCH is not None:
        record["launch"] = LAUNCH
        argv = [sys.executable, *LAUNCH["opts"], str(boot), *LAUNCH["argv"][1:]]
    else:
        argv = [sys.executable, *sys.orig_argv[1:]]
    for where, data in ((path, json.dumps(record).encode()), (boot, BOOT_SOURCE)):
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                     | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    fds = record_fds(record)
    for x in fds:
        os.set_inheritable(x, True)
    os.environ[HANDOFF_VAR] = str(path)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.chdir(START_CWD)
        if os.environ.get("TUISUP_FAULT") == "exec-fail":  # fault injection for the tests
            raise OSError(errno.ENOEXEC, "injected exec failure (TUISUP_FAULT=exec-fail)")
        execv_keeping_usr1(sys.executable, argv)
    except OSError as e:
        os.environ.pop(HANDOFF_VAR, None)
        for x in fds:
            with contextlib.suppress(OSError):
                os.set_inheritable(x, False)
        return e
    raise AssertionError("unreachable")  # pragma: no cover


async def hand_over(sup: Any, server: Any, watchers: Iterable[Any], runtime_dir: Path,
                    host: dict[str, Any] | None = None) -> tuple[dict[str, Any], OSError]:
    """Stop the watchers (their threads and inotify fds), close the control socket,
    detach the engine and exec the new image. Returns only if the exec failed: the
    record (for the caller to adopt again in-process) and why."""
    for w in watchers:
        if w is not None:
            w.stop()
    await stop_warm()  # (its pipe would close at the exec, leaving a zombie)
    await server.close("code reload")
    async with sup.config_lock:  # a config apply under way finishes first: no half state
        record = sup.detach()
        record["socket_path"] = str(server.path)
        if host is not None:
            record["host"] = host
        return record, exec_self(record, runtime_dir)


def code_reloaded(record: dict[str, Any], services: int) -> Notice:
    """The notice a new image emits once it carries the services (topic code_reloaded,
    with the numbers in `data`)."""
    gap_ms = round((time.monotonic() - record.get("detached_mono", time.monotonic())) * 1000)
    safe = record.get("safe_mode")
    after = (f" after {safe['seconds']:.1f}s in safe mode ({safe['why']})" if safe else "")
    message = (f"code reloaded{after}: pid {os.getpid()} carries on with {services} "
               f"services, none restarted; pipes unread for {gap_ms} ms")
    data = {"pid": os.getpid(), "services": services, "pipes_unread_ms": gap_ms,
            "safe_mode": {"seconds": safe["seconds"], "why": safe["why"]} if safe else None}
    return Notice(time.time(), "info", message, None, Topic.CODE_RELOADED, data)


def take_handoff() -> dict[str, Any] | None:
    """The predecessor's record, if this process is a new image of a code reload (once:
    the caller adopts it)."""
    record = pending_handoff()
    _handoff[:] = [None]
    return record


def watch_refusal(root: Path = PACKAGE) -> str | None:
    """Why the package's own code must not be followed (None if it may be): never code
    that other users can change (a file, its directory or any directory above)."""
    for d in [root, *root.parents]:
        try:
            why = others_can_write(d.stat(), True)
        except OSError:
            continue
        if why:
            return f"{d} {why}"
    for path in sorted(root.rglob("*")):
        is_dir = path.is_dir()
        if is_dir or path.suffix in (".py", ".tcss"):
            why = others_can_write(path.stat(), is_dir)
            if why:
                return f"{path} {why}"
    return None


def is_source_checkout(root: Path = PACKAGE) -> bool:
    """Running from a source tree or an editable install (not from site-packages)."""
    return "site-packages" not in root.parts and "dist-packages" not in root.parts


class SourceWatcher(Watcher):
    """Calls `on_change()` (debounced) when a .py or .tcss file of the package changes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Any,
                 root: Path = PACKAGE, debounce: float = 0.1) -> None:
        super().__init__(loop, lambda _paths: on_change(), debounce)
        self.root = root

    def dirs(self) -> dict[str, bool]:
        return {str(self.root): True}

    def wanted(self, path: str) -> bool:
        return path.endswith((".py", ".tcss"))


def watch_own_code(settings: Any, loop: asyncio.AbstractEventLoop, on_change: Any,
                   notice: Any) -> SourceWatcher | None:
    """Start following the package's own source if `settings.watch_code` says so (None:
    only for a source checkout or an editable install) and it is safe; else None."""
    if settings.watch_code is False or (settings.watch_code is None
                                        and not is_source_checkout()):
        return None
    why = watch_refusal()
    if why is not None:
        notice(f"not following the supervisor's own code: {why}")
        return None
    w = SourceWatcher(loop, on_change)
    w.start()
    start_warm(loop, [sys.executable, *(LAUNCH or {}).get("opts", [])], START_CWD)
    return w
