"""The dashboard's data feed: the engine's event stream into the Store and the event log,
the history back-filled once, the snapshot refreshed every second, the attached link's
ups and downs, and the engine's notices said to the user.

A mixin of `SupervisorApp` (it reads and writes the app's state; the app's `_tick` paints).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from textual import work

from tui_supervisor.engine.api import SupervisorAPI
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.views import ConnectionEvent, EventView
from tui_supervisor.tui.eventlog import (
    SUPERVISOR,
    Entry,
    EventLog,
    connected,
    earlier_notices,
    format_incident,
    notice_text,
)
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.detail import DetailPane
from tui_supervisor.tui.widgets.logview import LogView

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[str]
else:  # mypy checks it as the App it is mixed into; at run time a plain class, so
    # SupervisorApp stays the only Textual class (one CSS path, one bindings list)
    _AppBase = object

BACKFILL_LINES = 2000


class EventFeed(_AppBase):
    """Subscribes on mount (`_follow_events`); the app's tick hands it the notices."""

    # What it uses of the app (set in SupervisorApp.__init__ and on_mount).
    api: SupervisorAPI
    store: Store
    events: EventLog
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    config_error: str | None
    merged_logs: bool
    link: str | None
    _stream: AsyncIterator[EventView] | None
    _stamped: float
    _current: str | None
    _leaving: bool
    last_notice: tuple[float, str, str] | None = None
    """(wall time, level, "who: what") of the last warning or error: the header shows it
    until a newer one comes."""

    if TYPE_CHECKING:
        @property
        def logs(self) -> LogView: ...

        @property
        def detail(self) -> DetailPane: ...

        def _tick(self) -> None: ...

    @work(exclusive=True, group="events")
    async def _follow_events(self) -> None:
        """Snapshot + every event after it (nothing missed), then history back-filled by
        offset so no line is shown twice."""
        stream = await self.api.subscribe(logs=True)
        self._stream = stream
        first = True
        async for ev in stream:
            if ev["kind"] == "connection":  # attached, with reconnecting on
                self._on_link(ev)
                self.events.add(ev)
                continue
            self.store.apply(ev)
            self.events.add(ev)
            if ev["kind"] == "snapshot":  # the first, or a reconnect's
                self._events_connected(ev)
            if first:
                first = False
                self._stamp_views()
                await self._backfill()
                self.run_worker(self._backfill_trends(), group="trends-history")
                self._tick()
        if not self._leaving:
            self.notify(self.link or "lost the engine's event stream", severity="error",
                        timeout=30)
            if not self.link:  # else the link's own entry said it
                self.events.append(Entry(self.wall_clock(), "error", SUPERVISOR,
                                         "lost the engine's event stream"))

    def _events_connected(self, snap: Mapping[str, Any]) -> None:
        """Mark where the live event log starts; add what the engine says came before."""
        seen = self.events.entries[-1].t if self.events.entries else None
        self.events.append(connected(self.wall_clock(), snap, again=seen is not None))
        self.events.add_history(earlier_notices(snap))
        self.run_worker(self._earlier_crashes(snap, seen), group="events-history")

    async def _earlier_crashes(self, snap: Mapping[str, Any], seen: float | None) -> None:
        """The event log's only history: crashes of this engine before the UI connected
        (after `seen`, the newest entry, on a new subscription)."""
        try:
            incidents = await self.api.query("incidents", "list", {"n": 50})
        except Exception:  # an engine without the extension: nothing earlier to show
            return
        engine = snap.get("engine") or {}
        since = float(engine.get("started_at") or 0.0)  # this engine's, not older ones
        cut = since + float(engine.get("uptime") or 0.0)  # the snapshot: live after it
        self.events.add_history(format_incident(i) for i in incidents
                                if since <= float(i.get("t") or 0.0) < cut and
                                (seen is None or float(i.get("t") or 0.0) > seen))

    def _on_link(self, ev: ConnectionEvent) -> None:
        """The attached client lost the engine, got it back, or gave up."""
        state, msg = ev["state"], ev["message"]
        if state == "restored":
            self.link = None
            self._stamp_views()
            self.notify(msg, timeout=4)
        else:
            safe = ev.get("safe_mode") if state == "lost" else None  # new code failed
            self.link = (f"the engine is {safe['summary']} — services kept; fix and save "
                         "the code" if safe else "engine reloading - reconnecting…"
                         if state == "lost" else f"disconnected: {msg}")
            if state == "lost":
                self.notify(msg if safe else self.link, severity="error" if safe else
                            "warning", timeout=30 if safe else 4)
        self._tick()

    async def _backfill(self) -> None:
        cut = {n: int(i.view.get("log_offset") or 0) for n, i in self.store.services.items()}
        try:
            old = await self.api.logs(None, BACKFILL_LINES)
        except Exception:  # history is a nicety: live lines flow anyway
            return
        live = {n: list(i.lines) for n, i in self.store.services.items()}
        for info in self.store.services.values():
            info.lines.clear()
        self.store.merged.clear()
        self.store.load_lines([x for x in old if x.get("offset", 0) < cut.get(x["service"], 0)])
        for lines in live.values():
            for line in lines:
                self.store.services[line.service].lines.append(line)
        self.store.merged.extend(sorted((x for ls in live.values() for x in ls),
                                        key=lambda x: x.t))
        self.logs.show(None if self.merged_logs else self._current)

    async def _backfill_trends(self) -> None:
        """The table's trend cells start with the engine's sampled history (one query per
        service, once: at most a few hundred small answers)."""
        for name in list(self.store.services):
            try:
                h = await self.api.query("resources", "history", {
                    "service": name, "series": ["cpu_percent", "rss_bytes", "procs"]})
            except Exception:  # no sampler, or the service went away: live points only
                continue
            info = self.store.services.get(name)
            if info is not None and isinstance(h, Mapping):
                info.backfill(h)
                self.store.dirty.add(name)

    def _stamp_views(self) -> None:
        now = self._stamped = self.clock()
        for info in self.store.services.values():
            info.view["_seen_at"] = now

    async def _refresh_snapshot(self) -> None:
        if self.link:  # the subscription reconnects and brings a snapshot
            return
        try:
            snap = await self.api.snapshot()
        except Exception as e:
            self.notify(f"snapshot failed: {e}", severity="error")
            return
        self.store.load_snapshot(snap)
        self._stamp_views()
        if self.detail.display:
            await self.detail.refresh_data()

    def _on_notice(self, n: Mapping[str, Any]) -> None:
        topic, data = n.get("topic"), n.get("data") or {}
        if topic == Topic.CONFIG_INVALID:
            self.config_error = "; ".join(map(str, data.get("errors") or ()))
        elif topic == Topic.CONFIG_RELOADED:
            self.config_error = None
        if n.get("level") in ("warning", "error") or topic in (Topic.CONFIG_INVALID,
                                                               Topic.CONFIG_RELOADED):
            who = f"{n['service']}: " if n.get("service") else ""
            if n.get("level") in ("warning", "error") and topic != Topic.CONFIG_INVALID:
                # (a refused config has the header's alarm line already)
                self.last_notice = (float(n.get("t") or self.wall_clock()),
                                    str(n["level"]), who + notice_text(n))
            self.notify(who + notice_text(n),
                        severity="error" if n.get("level") == "error" else
                        "warning" if n.get("level") == "warning" else "information",
                        timeout=8)
