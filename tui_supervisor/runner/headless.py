"""The headless front: the engine's output as a merged console stream (console.py), on
the terminal, on a pipe, or in the state dir's engine.log (`--detach`, or once the
dashboard has gone)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from tui_supervisor import __version__
from tui_supervisor.config import Config
from tui_supervisor.console import Console
from tui_supervisor.engine.events import AnyEvent, LogLines
from tui_supervisor.engine.runtime import AlreadyRunning, engine_running
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.reload.code import take_handoff
from tui_supervisor.runner.engine import ENGINE_LOG, print_error
from tui_supervisor.runner.fork import detach
from tui_supervisor.runner.front import Ending, Front, UiOutcome
from tui_supervisor.runner.host import Host


class HeadlessFront:
    """`quiet`: state changes and notices only, not service output. `ready_fd`
    (`--detach`): told "ok" once the socket listens, or the start-up error. `stamp`: date
    the host's own lines (in engine.log, after the dashboard). `record`: the handoff
    record's `host` field (None: a plain headless engine)."""

    def __init__(self, names: list[str], *, quiet: bool, ready_fd: int | None = None,
                 stamp: bool = False, record: dict[str, Any] | None = None) -> None:
        self.console = Console(names)
        self.quiet = quiet
        self.ready_fd = ready_fd
        self.stamp = stamp
        self.record = record
        self.ending = Ending()
        self._tasks: set[asyncio.Future[Any]] = set()

    def _listen(self, ev: AnyEvent) -> None:
        if not isinstance(ev, LogLines):
            self.console(ev)

    def attach(self, sup: Supervisor) -> None:
        sup.bus.add_listener(self._listen if self.quiet else self.console)

    def _report(self, msg: str | None) -> int:
        """Say a start-up error on stderr, and tell `--detach`'s waiting parent."""
        if msg is not None:
            print_error(msg)
        if self.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.ready_fd, b"ok\n" if msg is None else f"{msg}\n".encode())
            os.close(self.ready_fd)
            self.ready_fd = None
        return 0 if msg is None else 1

    def failed(self, why: str) -> int:
        return self._report(why)

    def ready(self, sup: Supervisor, fresh: bool) -> None:
        self._report(None)
        if fresh:
            cfg = sup.config
            self.say(f"tui-supervisor {__version__} (pid {os.getpid()}) supervising "
                     f"{len(cfg.services)} services from {cfg.path}; logs in "
                     f"{cfg.settings.log_dir}")

    async def serve(self, sup: Supervisor) -> UiOutcome:
        return await self.ending.wait()

    def end(self, outcome: UiOutcome) -> None:
        self.ending.set(outcome)

    def hangup(self, sup: Supervisor) -> None:
        task = asyncio.ensure_future(sup.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def say(self, msg: str) -> None:
        self.console.write(f"{time.strftime('%F %T')} {msg}\n" if self.stamp else f"{msg}\n")

    def warn(self, sup: Supervisor, msg: str) -> None:
        self.say(msg)

    def stopping(self) -> None:
        self.say("stopping all services...")

    def stopped(self) -> None:
        self.say("all stopped")

    def handing_over(self) -> dict[str, Any] | None:
        # nothing reads the pipes from here until the new image adopts them
        self.say("code reload: handing over to a new image of this process")
        self.console.flush()
        return self.record

    def successor(self, outcome: UiOutcome, sup: Supervisor) -> Front:
        raise AssertionError(f"the headless console does not end {outcome}")

    def close(self) -> None:
        if self.ready_fd is not None:
            self._report("the engine failed while starting")
        self.console.close()


async def serve_headless(cfg: Config, *, quiet: bool, ready_fd: int | None = None,
                         stamp: bool = False) -> int:
    """Run the engine headless until SIGTERM/SIGINT (docs/ARCHITECTURE.md §5, §6); this process may
    be a code reload's new image (then it adopts the services)."""
    handoff = take_handoff()
    front = HeadlessFront(list(cfg.services), quiet=quiet, ready_fd=ready_fd, stamp=stamp)
    return await Host(cfg, front).run(handoff)


def run_headless(cfg: Config, *, quiet: bool, detached: bool = False) -> int:
    """`run --headless` (and `--detach`: in the background, output to the state dir's
    engine.log; returns once the engine is up)."""
    ready_fd = None
    if detached:
        running = engine_running(cfg.settings.runtime_dir)
        if running is not None:
            print_error(str(AlreadyRunning(running if running > 0 else None)))
            return 1
        parent_rc, ready_fd = detach(cfg.settings.state_dir / ENGINE_LOG)
        if parent_rc is not None:
            return parent_rc
    try:
        return asyncio.run(serve_headless(cfg, quiet=quiet, ready_fd=ready_fd))
    except KeyboardInterrupt:
        return 130
