"""A subscription that outlives its connection (`RemoteSupervisor(reconnect=...)`): a code
reload closes the socket for a moment; this reconnects, says so with `{"kind":
"connection", "state": "lost" | "restored" | "gave_up", "message"}` items
(`views.ConnectionEvent`; a "lost" one carries `safe_mode` while the engine waits in safe
mode for fixed code), and after a reconnect gives the new snapshot, then the log lines
written in between (replayed by offset: none lost, none twice; the pure part is in
resume.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Literal, cast

from tui_supervisor.control.connection import END, Connection
from tui_supervisor.control.discovery import engine_alive
from tui_supervisor.control.errors import (
    ControlError,
    InSafeMode,
    NotRunning,
    raise_reply_error,
)
from tui_supervisor.control.resume import LogMarks, Reconnect, delays
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.views import (
    ConnectionEvent,
    EventView,
    LogLine,
    NoticeEvent,
    SnapshotEvent,
)

if TYPE_CHECKING:
    from tui_supervisor.control.client import RemoteSupervisor

HELLO_WAIT = 5.0
"""Seconds a reconnect waits for the engine's hello."""
SAFE_MODE_POLL = 1.0
"""Seconds between asks while the engine is in safe mode."""
DROPPED_PAUSE = 1.0
"""Seconds before a client the engine dropped for falling behind subscribes again."""


class _GaveUp(Exception):
    pass


class ReconnectingSubscription:
    """One subscription across reconnects (RemoteSupervisor(reconnect=...).subscribe)."""

    def __init__(self, client: RemoteSupervisor, conn: Connection, logs: bool,
                 policy: Reconnect) -> None:
        self.client, self.conn, self.logs, self.policy = client, conn, logs, policy
        self.pid = conn.hello.get("pid")
        self.marks = LogMarks()
        self.ended: str | None = None
        """Why the engine ended the last stream (None: the connection was cut)."""
        self.ended_at: float | None = None
        """When, by the engine's clock (its last word at a close; None if unsaid)."""
        self.dropped = False
        """The engine ended the last subscription because this client fell behind: the
        next one starts at the present (no replay)."""

    async def events(self) -> AsyncIterator[EventView]:
        try:
            lost_at: float | None = None
            alive_at = 0.0  # the last answer from an engine in safe mode
            said = ""
            while True:
                safe: InSafeMode | None = None
                try:
                    async for ev in self._one(lost_at):
                        if ev["kind"] == "connection":  # restored
                            lost_at, said = None, ""
                        yield ev
                except NotRunning:
                    self.ended = None
                except InSafeMode as e:
                    safe, self.ended = e, None
                if lost_at is None:
                    lost_at = time.monotonic()
                if self.dropped:  # too slow for a flood of output: skip to the present
                    self.marks = LogMarks()  # no gaps: no replay (it would fall behind)
                    await asyncio.sleep(DROPPED_PAUSE)
                message = f"the engine is {safe}" if safe is not None else \
                    "fell behind the engine's output: skipping to the present (the log " \
                    "files have every line)…" if self.dropped else \
                    "engine went away (reloading its code): reconnecting…" \
                    if self.ended == "code reload" else \
                    "engine went away (reloading?): reconnecting…"
                if message != said:
                    said = message  # stamped when it happened, not when read (the event
                    # log's order): by the engine's last word, else when the socket closed
                    lost = _link("lost", message, self.ended_at or self.conn.closed_at)
                    if safe is not None:
                        lost["safe_mode"] = safe.info
                    yield lost
                try:
                    if safe is not None:  # alive, waiting for fixed code: ask again soon,
                        await asyncio.sleep(SAFE_MODE_POLL)  # for as long as it takes
                        alive_at = time.monotonic()
                    await self._reopen(max(lost_at, alive_at))
                except _GaveUp as e:
                    yield _link("gave_up", str(e))
                    return
        finally:
            await self.conn.close()

    async def _one(self, lost_at: float | None) -> AsyncIterator[EventView]:
        """One subscription on `self.conn`. After a reconnect (`lost_at` set) its snapshot
        is followed by the lines missed in between and a "restored" item."""
        self.ended, self.ended_at, self.dropped = None, None, False
        req_id, q = await self.conn.request("subscribe", {"logs": self.logs})
        first = True
        try:
            while True:
                msg = await q.get()
                if msg is END:
                    return
                if "ok" in msg:
                    if not msg["ok"]:
                        raise_reply_error(msg.get("error"))
                    result = msg.get("result") or {}
                    self.ended = str(result.get("end") or "ended")
                    t = result.get("t")
                    self.ended_at = float(t) if isinstance(t, int | float) else None
                    return
                item = msg.get("event")
                if not isinstance(item, dict):
                    continue
                ev = cast(EventView, item)
                if first and ev["kind"] == "snapshot":
                    first = False
                    yield ev
                    if lost_at is not None:
                        for item in await self._replay(ev):
                            yield item
                    self.marks.from_snapshot(ev)
                    if lost_at is not None:
                        yield self._restored(ev, time.monotonic() - lost_at)
                    continue
                if ev["kind"] == "log":
                    self.marks.saw(ev)
                elif ev["kind"] == "notice" and ev.get("topic") == Topic.SUBSCRIBER_DROPPED:
                    self.dropped = True  # the engine's last word to this subscriber
                yield ev
        finally:
            self.conn.forget(req_id)

    def _restored(self, snap: SnapshotEvent, down: float) -> ConnectionEvent:
        pid = snap["engine"].get("pid", self.conn.hello.get("pid"))
        same = pid == self.pid
        self.pid = pid
        ev = _link("restored", f"reconnected to the engine after {down:.1f}s"
                   + ("" if same else f" (a new engine, pid {pid})"))
        ev["pid"], ev["same_engine"], ev["down"] = pid, same, down
        return ev

    async def _replay(self, snap: SnapshotEvent) -> list[EventView]:
        """Log events for what was written while disconnected (same engine only: offsets
        of another engine are not comparable), plus a warning per service whose lines
        are no longer all in the engine's memory."""
        pid = snap["engine"].get("pid")
        gaps = self.marks.gaps(snap) if self.logs and pid == self.pid else []
        if not gaps:
            return []
        upto = {s["name"]: int(s.get("log_offset") or 0) for s in snap["services"]}
        try:
            history = cast(list[LogLine], await self.conn.call(
                "logs", {"names": gaps, "n": self.policy.replay_lines}))
        except (NotRunning, ControlError, UnknownService) as e:
            return [_notice(None, f"output written while reconnecting not replayed: {e}",
                            None)]
        out: list[EventView] = []
        notices: list[EventView] = []
        for name in gaps:
            events, lost = self.marks.replay(name, history, upto[name])
            out.extend(events)
            if lost:
                notices.append(_notice(name, f"{lost} bytes of output written while "
                                             "reconnecting not replayed (in its log file)",
                                       lost))
        out.sort(key=lambda ev: cast(float, ev.get("t")))
        return out + notices

    async def _reopen(self, lost_at: float) -> None:
        """Connect again, retrying while an engine holds the config's lock; _GaveUp when
        none does, or after the policy's bound."""
        await self.client._drop_stale(lost_at)
        await self.conn.close()
        runtime_dir = self.client.path.parent
        deadline = lost_at + self.policy.give_up_after
        for delay in delays(self.policy):
            try:  # bounded: a socket that accepts but never says hello is not an engine
                self.conn = await asyncio.wait_for(Connection.open(self.client.path), HELLO_WAIT)
                return
            except (NotRunning, TimeoutError):
                pass
            except (PermissionError, ControlError) as e:
                raise _GaveUp(f"cannot reconnect to the engine: {e}") from None
            if engine_alive(runtime_dir) is None:
                raise _GaveUp("the engine stopped: not reconnecting") from None
            if time.monotonic() + delay > deadline:
                raise _GaveUp(f"the engine did not come back within "
                              f"{self.policy.give_up_after:g}s: not reconnecting") from None
            await asyncio.sleep(delay)


def _link(state: Literal["lost", "restored", "gave_up"], message: str,
          t: float | None = None) -> ConnectionEvent:
    return {"kind": "connection", "t": time.time() if t is None else t, "state": state,
            "message": message}


def _notice(service: str | None, message: str, lost: int | None) -> NoticeEvent:
    return {"kind": "notice", "t": time.time(), "level": "warning", "service": service,
            "message": message, "topic": Topic.REPLAY_GAP.value,
            "data": None if lost is None else {"bytes": lost}}
