"""The engine host: boot → serve → hand over → boot again, one loop for every front.

A code reload execs a new image of this process (reload/code.py); the new image comes
back here through the runner's entry points with the handoff record and adopts the
services. If the exec itself fails, this image adopts its own record again and goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tui_supervisor.config import Config
from tui_supervisor.reload.code import adopted, checked_reload, code_reloaded
from tui_supervisor.runner.engine import Engine, StartError
from tui_supervisor.runner.front import Front, UiOutcome
from tui_supervisor.runner.signals import install, signal_table


class Host:
    """Runs the engine of `cfg` with `front` (which may hand over to a successor: the
    dashboard to the headless console when the UI goes)."""

    def __init__(self, cfg: Config, front: Front) -> None:
        self.cfg = cfg
        self.front = front
        self.engine: Engine | None = None
        self.stop_asked = False
        self._tasks: set[asyncio.Future[Any]] = set()

    async def run(self, adopt: dict[str, Any] | None) -> int:
        """`adopt`: a code reload's record (this process is the new image). Returns the
        exit code."""
        remove_signals = install(asyncio.get_running_loop(), signal_table(
            self._stop_signal, self._hangup_signal, self._code_signal, self._reopen_signal))
        carried = adopt is None  # False until a new image has adopted its services
        try:
            engine = self.engine = self._build()
            try:
                await engine.open(adopt)
            except StartError as e:
                return self.front.failed(str(e))
            self.front.ready(engine.sup, adopt is None)
            if adopt is None:
                engine.sup.autostart()
            else:
                adopted()
                carried = True
                engine.sup.bus.emit(code_reloaded(adopt, len(engine.sup.services)))
            self._watch(engine)
            while True:
                outcome = await self.front.serve(engine.sup)
                if outcome is UiOutcome.STOP:
                    break
                if outcome is UiOutcome.RELOAD:
                    engine = await self._hand_over(engine)
                    continue
                self.front = self.front.successor(outcome, engine.sup)  # the UI went
                self.front.attach(engine.sup)
            self.stop_asked = True  # (a stop signal from here on: SIGKILL)
            self.front.stopping()
            await engine.stop()
            self.front.stopped()
            return 0
        finally:
            remove_signals()
            if self.engine is not None:
                await self.engine.release(carried)
            self.front.close()

    def _build(self) -> Engine:
        engine = Engine(self.cfg, self._reload_code)
        engine.sup.shutdown_hook = self._shutdown
        self.front.attach(engine.sup)
        return engine

    def _watch(self, engine: Engine) -> None:
        engine.watch(lambda msg: self.front.warn(engine.sup, msg))

    async def _hand_over(self, engine: Engine) -> Engine:
        """Exec the new image; returns only if that failed, with the services adopted
        again by a new engine in this image."""
        record, error = await engine.hand_over(self.front.handing_over())
        self.front.say(f"code reload failed ({error}); carrying on with the old code")
        engine = self.engine = self._build()
        await engine.open(record)
        self._watch(engine)
        return engine

    async def _reload_code(self) -> dict[str, Any]:
        """The engine's `code_reloader`: checked, then whichever front serves now ends
        with RELOAD (its `serve` returns and the loop hands over)."""
        return await checked_reload(self.cfg.path, lambda: self.front.end(UiOutcome.RELOAD))

    # -- the signal table (signals.py) ---------------------------------------------------
    def _stop_signal(self) -> None:
        if self.stop_asked and self.engine is not None:  # twice: no waiting for timeouts
            self.front.say("stopping now: SIGKILL to every service")
            self.engine.sup.kill_all()
        self.stop_asked = True
        self.front.end(UiOutcome.STOP)

    def _shutdown(self) -> None:
        """The `shutdown` verb: as the first SIGTERM (whichever front serves ends with
        STOP; the host stops every service, then exits 0)."""
        self.stop_asked = True
        self.front.end(UiOutcome.STOP)

    def _hangup_signal(self) -> None:
        if self.engine is not None:
            self.front.hangup(self.engine.sup)

    def _code_signal(self) -> None:
        if self.engine is not None:
            self._spawn(self.engine.sup.reload_code())

    def _reopen_signal(self) -> None:
        if self.engine is not None:
            self._spawn(self.engine.sup.reopen_logs())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
