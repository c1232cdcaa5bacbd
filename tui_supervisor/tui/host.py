"""Running the dashboard: hosted in the engine's process, or attached to one over its
socket (DESIGN.md §1, §7).

Hosted: `launch()` forks. The parent stays in the shell's foreground job and only waits;
the child is the engine and runs the UI on the terminal. When the UI goes away — quit with
"leave running", the terminal lost (SIGHUP), or an exception inside the UI — the child
leaves the terminal's session (setsid, stdio to the state dir's engine.log), tells the
parent, which exits so the shell gets its prompt back, and goes on headless with its
control socket. The services never notice: they are the engine's children all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tui_supervisor.engine.events import Notice
from tui_supervisor.engine.runtime import stdio_to

LEFT = b"left\n"
"""Child → parent: the UI is gone, the engine goes on headless."""


def launch(cfg: Any) -> int:
    """Start engine + UI (fork: see the module doc). Returns the exit code for the shell."""
    log = cfg.settings.state_dir / "engine.log"
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the engine
        os.close(r)
        code = 1
        try:
            code = asyncio.run(run_hosted(cfg, w, log))
        except KeyboardInterrupt:
            code = 130
        finally:
            os._exit(code)
    os.close(w)
    return _wait_for_engine(pid, r, cfg, log)


def _wait_for_engine(pid: int, r: int, cfg: Any, log: Path) -> int:
    """The parent: forward SIGTERM and the terminal's hang-up (when this process leads
    the session, as under `ssh host tui-supervisor`, only it is told), ignore SIGINT
    (the engine's UI reads keys raw), exit when the engine exits or says the UI is gone."""
    hung_up = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal hung_up
        if sig == signal.SIGHUP:
            if hung_up:
                return
            hung_up = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, forward)
    signal.signal(signal.SIGTERM, forward)
    got = b""
    while True:
        try:
            ready = select.select([r], [], [], 1.0)[0]
        except InterruptedError:
            continue
        if ready:
            chunk = os.read(r, 4096)
            got += chunk
            if got.startswith(LEFT):
                with contextlib.suppress(OSError):  # the terminal may be gone
                    print(f"tui-supervisor: the engine goes on headless (pid {pid}); "
                          f"`tui-supervisor attach -c {cfg.path}` brings the dashboard "
                          f"back, its output is in {log}", flush=True)
                return 0
            if not chunk:
                break
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


async def run_hosted(cfg: Any, parent_fd: int | None, log: Path,
                     adopt: dict[str, Any] | None = None) -> int:
    """The engine with the UI in this process; headless once the UI is gone. `adopt`: a
    code reload's record (this process is the new image)."""
    from tui_supervisor.control.server import ControlServer
    from tui_supervisor.engine.runtime import AlreadyRunning, RuntimeDirError
    from tui_supervisor.engine.supervisor import Supervisor
    from tui_supervisor.metrics import attach_metrics
    from tui_supervisor.reload.code import (
        adopted,
        checked_reload,
        hand_over,
        reloaded_notice,
        stop_warm,
        watch_own_code,
    )
    from tui_supervisor.reload.config import ConfigWatcher

    loop = asyncio.get_running_loop()
    ui: dict[str, Any] = {}

    def leave_ui() -> None:  # the UI leaves first; the exec follows `run_async`
        app = ui.get("app")
        if app is not None:
            _leave(app, "reload")

    async def reload_code() -> dict[str, Any]:
        return await checked_reload(cfg.path, leave_ui)

    async def boot(record: dict[str, Any] | None) -> tuple[Any, Any]:
        sup = Supervisor(cfg)
        attach_metrics(sup)
        sup.code_reloader = reload_code
        server = ControlServer(sup, cfg.settings.runtime_dir)
        await sup.open(autostart=False, adopt=record)
        await server.start()
        return sup, server

    try:
        sup, server = await boot(adopt)
    except AlreadyRunning as e:
        print(f"tui-supervisor: {e}", file=sys.stderr)
        return 1
    except (RuntimeDirError, OSError) as e:
        print(f"tui-supervisor: cannot start: {e}", file=sys.stderr)
        return 1
    if adopt is None:
        sup.autostart()
    else:
        adopted()
        sup.bus.emit(Notice(time.time(), "info", reloaded_notice(adopt, len(sup.services))))
    watcher = ConfigWatcher(sup)  # saves of the config reload it, UI or not
    watcher.start()

    def follow_code() -> Any:  # a source change asks whoever reloads the code now
        return watch_own_code(cfg.settings, loop, lambda: sup.reload_code(),
                              lambda msg: sup.bus.emit(Notice(time.time(), "warning", msg)))

    code_watch = follow_code()
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(sup.reload_code()))
    while True:
        how = await _run_ui(sup, loop, log, ui)
        if how != "reload":
            break
        record, error = await hand_over(  # returns only if the exec failed
            sup, server, (watcher, code_watch), cfg.settings.runtime_dir,
            {"mode": "hosted", "parent_fd": parent_fd, "log": str(log)})
        _log_crash(log, f"code reload failed ({error}); carrying on with the old code")
        sup, server = await boot(record)
        watcher = ConfigWatcher(sup)
        watcher.start()
        code_watch = follow_code()
    if how == "stop":
        watcher.stop()
        if code_watch is not None:
            code_watch.stop()
        await stop_warm()
        await server.close()
        await sup.close()
        return 0
    _go_headless(log, parent_fd)
    reload_now = asyncio.Event()

    async def headless_reload() -> dict[str, Any]:
        return await checked_reload(cfg.path, reload_now.set)

    try:
        while True:
            sup.code_reloader = headless_reload
            if await _headless(sup, server, loop, reload_now) == "stopped":
                return 0
            reload_now.clear()
            record, error = await hand_over(  # the new image stays headless
                sup, server, (watcher, code_watch), cfg.settings.runtime_dir,
                {"mode": "headless"})
            _log_crash(log, f"code reload failed ({error}); carrying on with the old code")
            sup, server = await boot(record)
            watcher = ConfigWatcher(sup)
            watcher.start()
            code_watch = follow_code()
    finally:
        watcher.stop()
        if code_watch is not None:
            code_watch.stop()
        await stop_warm()


async def _run_ui(sup: Any, loop: asyncio.AbstractEventLoop, log: Path,
                  ui: dict[str, Any]) -> str:
    """Run the app; "stop", "leave", "reload" (code), "lost" (terminal gone) or
    "crashed"."""
    try:  # in a worker thread: the loop reads the pipes meanwhile (textual takes ~0.1 s)
        mod = await asyncio.to_thread(importlib.import_module, "tui_supervisor.tui.app")
    except Exception:
        _log_crash(log)
        return "crashed"
    app = ui["app"] = mod.SupervisorApp(sup, mode="hosted")
    lost = False

    def terminal_lost() -> None:
        nonlocal lost
        lost = True
        app.exit("lost")

    def stop_all() -> None:
        app.exit("stop")

    loop.add_signal_handler(signal.SIGHUP, terminal_lost)
    loop.add_signal_handler(signal.SIGTERM, stop_all)
    try:
        result = await app.run_async()
    except Exception:
        _log_crash(log)
        return "crashed"
    finally:
        ui.pop("app", None)
        for sig in (signal.SIGHUP, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if app.return_code not in (0, None) and result is None:
        error = getattr(app, "_exception", None)  # Textual keeps what it caught
        _log_crash(log, "".join(traceback.format_exception(error)) if error is not None
                   else "the UI exited with an error")
        return "crashed"
    return "lost" if lost else (result or "leave")


def _leave(app: Any, result: str) -> None:
    """`app.exit(result)` for a code reload, without waiting for the UI's input thread:
    Textual's driver joins it on the loop's thread, and it sleeps in select(0.1) twice
    before it ends (measured: up to 0.2 s more of unread pipes, and of a blank screen).
    The thread is told to end and let go of (the exec ends it anyway); mouse reporting is
    turned off here, since the driver then skips that step. Private driver attributes: if
    they are not there, this is just `app.exit`."""
    driver = getattr(app, "_driver", None)
    event = getattr(driver, "exit_event", None)
    mouse_off = getattr(driver, "_disable_mouse_support", None)
    if getattr(driver, "_key_thread", None) is not None and event is not None \
            and callable(mouse_off):
        mouse_off()
        event.set()
        driver._key_thread = None  # type: ignore[union-attr]
    app.exit(result)


def _log_crash(log: Path, what: str | None = None) -> None:
    with contextlib.suppress(OSError):
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"{time.strftime('%F %T')} the UI failed; services go on headless\n")
            f.write(what + "\n" if what else traceback.format_exc())


def _go_headless(log: Path, parent_fd: int | None) -> None:
    """Leave the terminal: own session, stdio to the log, tell the waiting parent."""
    with contextlib.suppress(OSError):
        os.setsid()
    with contextlib.suppress(OSError):
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stdio_to(fd)
        os.close(fd)
    if parent_fd is not None:
        with contextlib.suppress(OSError):
            os.write(parent_fd, LEFT)
            os.close(parent_fd)


async def _headless(sup: Any, server: Any, loop: asyncio.AbstractEventLoop,
                    reload_now: asyncio.Event) -> str:
    """Headless from now on (DESIGN.md §7): TERM/INT stop all ("stopped"), HUP reloads
    the config; "reload" when a (checked) code reload is due."""
    from tui_supervisor.console import Console
    from tui_supervisor.engine.events import LogLines

    console = Console(list(sup.services))  # state changes and notices into engine.log
    sup.bus.add_listener(lambda ev: None if isinstance(ev, LogLines) else console(ev))
    stop = asyncio.Event()

    def on_stop() -> None:
        if stop.is_set():
            sup.kill_all()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(sup.reload()))
    print(f"{time.strftime('%F %T')} the UI is gone; pid {os.getpid()} goes on headless",
          flush=True)
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(reload_now.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    if not stop.is_set():
        console.flush()
        console.close()
        return "reload"
    await server.close()
    await sup.close()
    console.write(f"{time.strftime('%F %T')} all stopped\n")
    console.close()
    return "stopped"


async def run_attached(runtime_dir: Path) -> int:
    """The dashboard as a client of a running engine; quitting leaves it running."""
    from tui_supervisor.control.client import NotRunning, RemoteSupervisor
    from tui_supervisor.control.resume import Reconnect
    from tui_supervisor.tui.app import SupervisorApp

    client = RemoteSupervisor(runtime_dir, reconnect=Reconnect())  # rides out code reloads
    try:
        await client.connect()
    except NotRunning as e:
        print(f"tui-supervisor: {e}", file=sys.stderr)
        return 1
    except PermissionError as e:
        print(f"tui-supervisor: {e}", file=sys.stderr)
        return 1
    try:
        await SupervisorApp(client, mode="attached").run_async()
    finally:
        await client.close()
    return 0
