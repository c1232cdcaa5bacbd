"""SupervisorAPI: exactly what clients (CLI, TUI, control socket) use of an engine.

Implemented by the in-process `Supervisor` and by the control-socket client
(`RemoteSupervisor`), so a client cannot tell a local engine from a remote one. Everything
crossing it is plain JSON-native data, typed in `engine.views`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # types only: the engine's import stays light (a code reload's
    # new image imports all of this before it reads the services' pipes again)
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


class SupervisorAPI(Protocol):
    async def snapshot(self) -> Snapshot:
        """{"engine": {...}, "services": [{...}, ...]} (services in config order)."""
        ...

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[EventView]:
        """First item: {"kind": "snapshot", ...snapshot, "notices": [the last notices
        before it]}; then every event after it, none missed. A subscriber that falls too
        far behind gets a `subscriber_dropped` notice and the end."""
        ...

    async def start(self, names: list[str], no_deps: bool = False) -> StartResult:
        """Start `names` and, unless `no_deps`, the stopped services they depend on
        (dependencies first); one whose dependencies do not hold yet waits for them."""
        ...

    async def stop(self, names: list[str], no_deps: bool = False) -> StopResult:
        """Stop `names` and, unless `no_deps`, first the services that depend on them."""
        ...

    async def restart(self, names: list[str], *, rolling: bool = False) -> RestartResult:
        """Restart them all at once; `rolling`: one at a time, each up (ready, with a
        readiness probe) before the next, stopping at the first that does not come up
        in time (the rest untouched). A replica group's name means all its copies
        (in every verb that takes names)."""
        ...

    async def scale(self, name: str, n: int) -> ScaleResult:
        """Run `n` copies of replica group `name`: new ones started, the highest-numbered
        stopped first, the others untouched. Kept until a config reload changes the
        group's `replicas:` in the file (then the file wins)."""
        ...

    async def signal(self, name: str, sig: int | str) -> SignalResult: ...

    async def shutdown(self) -> ShutdownResult:
        """Stop every service, then end the engine (as SIGTERM does). Returns at once:
        {"ok", "pid": the engine's process, gone once it is done, "stopping": the
        services that were up}."""
        ...

    async def reload_code(self) -> CodeReloadResult:
        """Check the supervisor's own code on disk and re-exec with it, keeping every
        service (docs/ARCHITECTURE.md §6). A failed check changes nothing: {"ok": False, ...}."""
        ...

    async def reload(self) -> ReloadResult:
        """Re-read the config file and apply the difference. An invalid file changes
        nothing: {"ok": False, "errors": [...]}."""
        ...

    async def reopen_logs(self) -> ReopenLogsResult:
        """Open every log file again at its path: the services' and, when its output goes
        there, the engine's own (after another tool rotated them: logrotate's `create`
        mode; the engine also notices a renamed or removed file by itself within a
        second). What was written before stays in the renamed file."""
        ...

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[LogLine]:
        """The last `n` lines of each named service (all if None), merged by time:
        {"service", "offset", "t", "stream", "text", "size"} (offset: of the line in that
        service's output, in bytes; size: its bytes, newline included)."""
        ...

    async def query(self, extension: str, what: str,
                    args: dict[str, Any] | None = None) -> Any:
        """Ask a layer above the engine (e.g. "incidents", "resources") for data it keeps
        but does not put in snapshots (history, forensics). Raises ValueError for an
        unknown extension or a question it does not answer."""
        ...


class UnknownService(KeyError):
    def __str__(self) -> str:
        return f"no such service: {self.args[0]}"
