"""One boot of the engine as a host runs it: the Supervisor with its metrics layers, its
control socket, and the watchers of the config file and of the package's own source."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tui_supervisor.config import Config
from tui_supervisor.control.server import ControlServer
from tui_supervisor.engine.events import Notice, Topic
from tui_supervisor.engine.runtime import AlreadyRunning, RuntimeDirError
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.metrics import attach_metrics
from tui_supervisor.reload.code import hand_over, stop_warm, watch_own_code
from tui_supervisor.reload.config import ConfigWatcher

PROG = "tui-supervisor"
ENGINE_LOG = "engine.log"
"""In the state dir: the engine's output once it left its terminal (`run --detach`, after
the dashboard), and the UI's failures."""


def print_error(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)


def emit_notice(sup: Supervisor, level: str, message: str,
                topic: Topic = Topic.GENERAL) -> None:
    """The host's own notices (to the console, the dashboards and their event logs)."""
    sup.bus.emit(Notice(time.time(), level, message, topic=topic))


class StartError(Exception):
    """The engine could not start; `str()` is the one line that says why."""


class Engine:
    """A Supervisor, its metrics and its control socket, opened on a config (or on a
    code reload's record), then followed by the config and source watchers."""

    def __init__(self, cfg: Config,
                 code_reloader: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.cfg = cfg
        self.sup = Supervisor(cfg)
        attach_metrics(self.sup)
        self.sup.code_reloader = code_reloader
        self.sup.stdio_log = cfg.settings.state_dir / ENGINE_LOG
        self.server = ControlServer(self.sup, cfg.settings.runtime_dir)
        self.config_watch: ConfigWatcher | None = None
        self.code_watch: Any = None

    async def open(self, adopt: dict[str, Any] | None) -> None:
        """Open the engine (services not started yet) and its socket; StartError if not."""
        try:
            await self.sup.open(autostart=False, adopt=adopt)
        except AlreadyRunning as e:
            raise StartError(str(e)) from e
        except RuntimeDirError as e:
            raise StartError(f"cannot start: {e}") from e
        except OSError as e:  # e.g. a log_dir or state_dir that cannot be created
            where = f"{e.filename}: " if e.filename else ""
            raise StartError(f"cannot start: {where}{e.strerror or e}") from e
        metrics = self.sup.extension("prometheus")
        if metrics is not None and getattr(metrics, "error", None):
            raise StartError(f"cannot start: {metrics.error}")  # type: ignore[attr-defined]
        try:
            await self.server.start()
        except OSError as e:
            raise StartError(f"cannot start: control socket {self.server.path}: "
                             f"{e.strerror or e}") from e

    def watch(self, warn: Callable[[str], None]) -> None:
        """Saves of the config reload it; changes to the package's source (if followed)
        reload the code, through whoever reloads it now (`sup.code_reloader`)."""
        self.config_watch = ConfigWatcher(self.sup)
        self.config_watch.start()
        self.code_watch = watch_own_code(self.cfg.settings, asyncio.get_running_loop(),
                                         lambda: self.sup.reload_code(), warn)

    def unwatch(self) -> None:
        if self.config_watch is not None:
            self.config_watch.stop()
        if self.code_watch is not None:
            self.code_watch.stop()

    async def hand_over(self, host: dict[str, Any] | None
                        ) -> tuple[dict[str, Any], OSError]:
        """Exec a new image with the services (reload/code.py); returns only if the exec
        failed: the record to adopt again in-process, and why."""
        return await hand_over(self.sup, self.server, (self.config_watch, self.code_watch),
                               self.cfg.settings.runtime_dir, host)

    async def stop(self) -> None:
        """Stop every service and close the socket: the engine's end."""
        self.unwatch()
        await stop_warm()
        await self.server.close()
        await self.sup.close()

    async def release(self, carried: bool) -> None:
        """Whatever is still open, however the host ended. The services are stopped only
        if this image carries them (a new image that failed to adopt leaves them to the
        boot guard's safe mode)."""
        self.unwatch()
        await self.server.close()
        await stop_warm()
        if not self.sup._closed and self.sup.ctx is not None and carried:
            await self.sup.close()
