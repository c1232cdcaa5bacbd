"""Event fan-out: synchronous listeners and bounded async subscriptions.

The engine is single-threaded (asyncio), so "snapshot, then subscribe" is atomic as long
as no await sits between the two; `Supervisor.subscribe` relies on that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from tui_supervisor.engine.events import AnyEvent, Notice, Topic

Listener = Callable[[AnyEvent], None]
log = logging.getLogger("tui_supervisor.engine")


class Subscription:
    """An async iterator of events with a bounded queue. A subscriber that falls more than
    `maxsize` events behind is dropped: it receives a final Notice and the iteration ends."""

    def __init__(self, bus: EventBus, maxsize: int, first: Any = None,
                 accept: Callable[[AnyEvent], bool] | None = None) -> None:
        self._bus = bus
        self._accept = accept
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._maxsize = maxsize
        self.dropped = False
        self.closed = False
        if first is not None:
            self._queue.put_nowait(first)

    def _push(self, ev: AnyEvent) -> None:
        if self.closed or (self._accept is not None and not self._accept(ev)):
            return
        if self._queue.qsize() >= self._maxsize:
            self.dropped = True
            self._queue.put_nowait(Notice(time.time(), "error",
                                          "subscriber too slow: dropped",
                                          topic=Topic.SUBSCRIBER_DROPPED))
            self._queue.put_nowait(None)
            self._bus._remove(self)
            self.closed = True
            return
        self._queue.put_nowait(ev)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def get_nowait(self) -> Any:
        """Next queued item, or raises asyncio.QueueEmpty."""
        return self._queue.get_nowait()


class EventBus:
    """Listeners are called in order at emit time. One that raises is contained: the
    others, the subscribers and the emitter (a service's exit handling) carry on; its
    traceback is logged and it is said once as a notice (topic internal)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._subs: list[Subscription] = []
        self._failed: set[tuple[str, str]] = set()
        """(listener, exception type) already said."""
        self.listener_errors = 0

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call `fn` synchronously for every event; returns a function that removes it."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def subscribe(self, maxsize: int = 10_000, first: Any = None,
                  accept: Callable[[AnyEvent], bool] | None = None) -> Subscription:
        """A bounded async subscription; `first` is queued before any event; `accept`
        filters events."""
        sub = Subscription(self, maxsize, first, accept)
        self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def emit(self, ev: AnyEvent) -> None:
        for fn in tuple(self._listeners):
            try:
                fn(ev)
            except Exception as e:
                self._listener_failed(fn, ev, e)
        for sub in tuple(self._subs):
            try:
                sub._push(ev)
            except Exception as e:
                self._listener_failed(sub._push, ev, e)

    def _listener_failed(self, fn: Callable[..., Any], ev: AnyEvent, e: Exception) -> None:
        self.listener_errors += 1
        who = getattr(fn, "__qualname__", repr(fn))
        key = (who, type(e).__name__)
        if key in self._failed:
            log.debug("listener %s failed again on %r: %r", who, ev, e)
            return
        self._failed.add(key)  # before the notice: a listener failing on it too is quiet
        log.error("listener %s failed on %r", who, ev, exc_info=e)
        service = getattr(ev, "service", None)
        self.emit(Notice(time.time(), "error", f"internal error in {who} (an event "
                         f"listener): {type(e).__name__}: {e} (traceback in the engine's "
                         "log); the event was delivered to the others",
                         service if isinstance(service, str) else None, Topic.INTERNAL,
                         {"where": who, "error": f"{type(e).__name__}: {e}",
                          "repairs": []}))

    def close(self) -> None:
        for sub in tuple(self._subs):
            sub.close()
