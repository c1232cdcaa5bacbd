"""RemoteSupervisor: the SupervisorAPI of an engine in another process, over its socket.

Errors come back as the exceptions the in-process engine raises (UnknownService,
ValueError for a bad signal), plus NotRunning (no engine listens) and PermissionError
(errors.py). The connection is connection.py; with a `Reconnect` policy a subscription
outlives its connection (reconnecting.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from tui_supervisor.control import protocol as p
from tui_supervisor.control.connection import Connection
from tui_supervisor.control.errors import ControlError
from tui_supervisor.control.reconnecting import ReconnectingSubscription
from tui_supervisor.control.resume import Reconnect
from tui_supervisor.engine.views import (
    CodeReloadResult,
    EventView,
    LogLine,
    ReloadResult,
    ReopenLogsResult,
    RestartResult,
    ScaleResult,
    ShutdownResult,
    SignalResult,
    Snapshot,
    StartResult,
    StopResult,
)


class RemoteSupervisor:
    """SupervisorAPI over `<runtime_dir>/control.sock`. Connects on first use; each
    subscription gets its own connection, closed when the iterator is. With `reconnect`,
    subscriptions ride out the engine going away for a while (see the module doc)."""

    def __init__(self, runtime_dir: Path | str, *, reconnect: Reconnect | None = None
                 ) -> None:
        self.path = p.socket_path(Path(runtime_dir))
        self.reconnect = reconnect
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> dict[str, Any]:
        """Connect (if not yet) and return the engine's hello."""
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await Connection.open(self.path)
            return self._conn.hello

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _drop_stale(self, before: float) -> None:
        """Close the request connection if it was opened before `before` (it went to an
        engine image that is gone): the next call opens a new one."""
        conn = self._conn
        if conn is not None and conn.opened < before:
            self._conn = None
            await conn.close()

    async def __aenter__(self) -> RemoteSupervisor:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, cmd: str, **args: Any) -> Any:
        await self.connect()
        assert self._conn is not None
        return await self._conn.call(cmd, args)

    # -- SupervisorAPI ----------------------------------------------------------------
    # (replies are the engine's views as JSON: typed as such, not re-checked here)
    async def snapshot(self) -> Snapshot:
        return cast(Snapshot, await self._call("snapshot"))

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[EventView]:
        conn = await Connection.open(self.path)
        if self.reconnect is None:
            return _closing(conn, conn.stream("subscribe", {"logs": logs}))
        return ReconnectingSubscription(self, conn, logs, self.reconnect).events()

    async def start(self, names: list[str], no_deps: bool = False) -> StartResult:
        # no_deps only when asked: an engine from before depends_on refuses the key
        extra = {"no_deps": True} if no_deps else {}
        return cast(StartResult, await self._call("start", names=list(names), **extra))

    async def stop(self, names: list[str], no_deps: bool = False) -> StopResult:
        extra = {"no_deps": True} if no_deps else {}
        return cast(StopResult, await self._call("stop", names=list(names), **extra))

    async def restart(self, names: list[str], *, rolling: bool = False) -> RestartResult:
        if rolling:  # (an engine before replicas refuses the argument: said as an error)
            return cast(RestartResult, await self._call("restart", names=list(names),
                                                        rolling=True))
        return cast(RestartResult, await self._call("restart", names=list(names)))

    async def scale(self, name: str, n: int) -> ScaleResult:
        return cast(ScaleResult, await self._call("scale", name=name, n=n))

    async def signal(self, name: str, sig: int | str) -> SignalResult:
        return cast(SignalResult, await self._call("signal", name=name, sig=sig))

    async def shutdown(self) -> ShutdownResult:
        return cast(ShutdownResult, await self._call("shutdown"))

    async def reload(self) -> ReloadResult:
        return cast(ReloadResult, await self._call("reload"))

    async def reload_code(self) -> CodeReloadResult:
        return cast(CodeReloadResult, await self._call("reload", code=True))

    async def reopen_logs(self) -> ReopenLogsResult:
        return cast(ReopenLogsResult, await self._call("reopen_logs"))

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[LogLine]:
        return cast(list[LogLine], await self._call(
            "logs", names=list(names) if names is not None else None, n=n))

    async def query(self, extension: str, what: str,
                    args: dict[str, Any] | None = None) -> Any:
        try:
            return await self._call("query", extension=extension, what=what, args=args or {})
        except ControlError as e:
            if e.code == p.BAD_ARGS:
                raise ValueError(str(e)) from None
            raise


async def _closing(conn: Connection, it: AsyncIterator[dict[str, Any]]
                   ) -> AsyncIterator[EventView]:
    try:
        async for ev in it:
            yield cast(EventView, ev)
    finally:
        await conn.close()
