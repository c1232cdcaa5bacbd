"""The dashboard front: the engine with its UI in this process (docs/ARCHITECTURE.md §2, §5).

`run_dashboard` forks (fork.py): the parent stays in the shell's foreground job and only
waits; the child is the engine and runs the UI on the terminal. When the UI goes away —
quit with "leave running", the terminal lost (SIGHUP), or an exception inside the UI —
the engine leaves the terminal's session (stdio to the state dir's engine.log), tells the
parent, which exits so the shell gets its prompt back, and goes on headless with its
control socket. The services never notice: they are the engine's children all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tui_supervisor.config import Config
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.runtime import AlreadyRunning, engine_running, make_dirs
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.reload.code import handoff_mode, take_handoff
from tui_supervisor.runner.engine import ENGINE_LOG, emit_notice, print_error
from tui_supervisor.runner.fork import fork_engine, leave_terminal, tell_parent_left
from tui_supervisor.runner.front import Ending, Front, UiOutcome
from tui_supervisor.runner.headless import HeadlessFront, serve_headless
from tui_supervisor.runner.host import Host

APP_MODULE = "tui_supervisor.tui.app"
RESULTS = {"stop": UiOutcome.STOP, "leave": UiOutcome.LEAVE, "reload": UiOutcome.RELOAD}
"""What the app's `exit(result)` means here (anything else: it left)."""


class DashboardFront:
    """`log`: the state dir's engine.log (the UI's failures, and the engine's output once
    the UI has gone); `parent_fd`: the waiting parent's pipe (fork.py)."""

    def __init__(self, log: Path, parent_fd: int | None) -> None:
        self.log = log
        self.parent_fd = parent_fd
        self.ending = Ending()
        self.app: Any = None

    def attach(self, sup: Supervisor) -> None:
        pass  # the app reads the engine itself (and the notices it kept)

    def failed(self, why: str) -> int:
        print_error(why)
        return 1

    def ready(self, sup: Supervisor, fresh: bool) -> None:
        pass

    async def serve(self, sup: Supervisor) -> UiOutcome:
        """Run the app until it exits (or `end()` ends it)."""
        pending = self.ending.take()  # asked for before the UI was up
        if pending is not None:
            return pending
        try:  # in a worker thread: the loop reads the pipes meanwhile (textual takes ~0.1 s)
            mod = await asyncio.to_thread(importlib.import_module, APP_MODULE)
        except Exception:
            log_crash(self.log)
            return UiOutcome.CRASHED
        pending = self.ending.take()
        if pending is not None:
            return pending
        app = self.app = mod.SupervisorApp(sup, mode="hosted")
        try:
            result = await app.run_async()
        except Exception:
            log_crash(self.log)
            return UiOutcome.CRASHED
        finally:
            self.app = None
        if app.return_code not in (0, None) and result is None:
            error = getattr(app, "_exception", None)  # Textual keeps what it caught
            log_crash(self.log, "".join(traceback.format_exception(error))
                      if error is not None else "the UI exited with an error")
            return UiOutcome.CRASHED
        return self.ending.take() or RESULTS.get(result, UiOutcome.LEAVE)

    def end(self, outcome: UiOutcome) -> None:
        if not self.ending.set(outcome) or self.app is None:
            return
        if outcome is UiOutcome.RELOAD:
            exit_now(self.app, outcome.value)
        else:
            self.app.exit(outcome.value)

    def hangup(self, sup: Supervisor) -> None:
        self.end(UiOutcome.LOST)  # the terminal is gone

    def say(self, msg: str) -> None:
        append_log(self.log, f"{time.strftime('%F %T')} {msg}\n")

    def warn(self, sup: Supervisor, msg: str) -> None:
        emit_notice(sup, "warning", msg, Topic.SOURCE_WATCH)  # the dashboard shows it

    def stopping(self) -> None:
        pass

    def stopped(self) -> None:
        pass

    def handing_over(self) -> dict[str, Any] | None:
        return {"mode": "hosted", "parent_fd": self.parent_fd, "log": str(self.log)}

    def successor(self, outcome: UiOutcome, sup: Supervisor) -> Front:
        """Headless from now on: out of the terminal's session, output to the log (said
        there before the parent is told, so the log has it once the shell has its prompt)."""
        leave_terminal(self.log)
        front = HeadlessFront(list(sup.services), quiet=True, stamp=True,
                              record={"mode": "headless"})
        front.say(f"the UI is gone; pid {os.getpid()} goes on headless")
        front.console.flush()
        tell_parent_left(self.parent_fd)
        self.parent_fd = None
        return front

    def close(self) -> None:
        pass


def exit_now(app: Any, result: str) -> None:
    """`app.exit(result)` for a code reload, without waiting for the UI's input thread:
    Textual's driver joins it on the loop's thread, and it sleeps in select(0.1) twice
    before it ends (measured: up to 0.2 s more of unread pipes, and of a blank screen).
    The thread is told to end and let go of (the exec ends it anyway); mouse reporting is
    turned off here, since the driver then skips that step. Private driver attributes: if
    they are not there, this is just `app.exit`."""
    driver = getattr(app, "_driver", None)
    event = getattr(driver, "exit_event", None)
    mouse_off = getattr(driver, "_disable_mouse_support", None)
    if driver is not None and getattr(driver, "_key_thread", None) is not None \
            and event is not None and callable(mouse_off):
        mouse_off()
        event.set()
        driver._key_thread = None
    app.exit(result)


def append_log(log: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        make_dirs(log.parent)  # the state dir: 0700 if we make it
        with open(log, "a") as f:
            f.write(text)


def log_crash(log: Path, what: str | None = None) -> None:
    append_log(log, f"{time.strftime('%F %T')} the UI failed; services go on headless\n"
               + (what + "\n" if what else traceback.format_exc()))


def run_hosted(cfg: Config) -> int:
    """This process is the new image of a dashboard's engine (a code reload): the UI
    again, on the services the record carries."""
    record = take_handoff()
    assert record is not None
    host = record.pop("host")
    fd = host.get("parent_fd")
    if fd is not None:
        os.set_inheritable(fd, False)
    front = DashboardFront(Path(host["log"]), fd)
    return asyncio.run(Host(cfg, front).run(record))


def run_dashboard(cfg: Config) -> int:
    """Engine + dashboard in one process (docs/ARCHITECTURE.md §2); or, for a code reload's new
    image, whichever the old image was: hosted, or headless once its UI had gone."""
    mode = handoff_mode()
    if mode == "hosted":
        return run_hosted(cfg)
    if mode == "headless":  # the dashboard had gone: stay headless (stdio is engine.log)
        try:
            return asyncio.run(serve_headless(cfg, quiet=True, stamp=True))
        except KeyboardInterrupt:
            return 130
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print_error("the dashboard needs a terminal; use `run --headless` (or `--detach`)")
        return 2
    running = engine_running(cfg.settings.runtime_dir)
    if running is not None:
        print_error(str(AlreadyRunning(running if running > 0 else None)))
        return 1
    log = cfg.settings.state_dir / ENGINE_LOG

    def engine(parent_fd: int) -> int:
        return asyncio.run(Host(cfg, DashboardFront(log, parent_fd)).run(None))

    return fork_engine(engine, cfg.path, log)
