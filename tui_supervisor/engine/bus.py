"""Event fan-out: synchronous listeners and byte-bounded async subscriptions.

The engine is single-threaded (asyncio), so "snapshot, then subscribe" is atomic as long
as no await sits between the two; `Supervisor.subscribe` relies on that.

A subscriber that does not keep up costs the engine at most `max_bytes` (its own queue)
and all of them together at most `EventBus.max_total` (README "Control socket limits"):
past either bound the subscriber is dropped, its queue emptied at once, and it is told
so by a last `subscriber_dropped` notice.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from tui_supervisor.engine.events import AnyEvent, LogLines, Notice, Topic

Listener = Callable[[AnyEvent], None]

SUB_MAX_BYTES = 8 << 20
"""Bytes of events one subscriber may have queued (not yet taken) before it is dropped:
seconds of the fastest output a dashboard shows, far more than one that reads keeps."""
BUS_MAX_BYTES = 64 << 20
"""Bytes queued for all subscribers together; past it the one furthest behind goes."""
ITEM_COST = 256
"""Bytes charged for each queued item besides its payload (the objects that carry it),
so a flood of tiny events is bounded too."""


def cost(item: Any) -> int:
    """What a queued item counts against the bounds: its output bytes plus ITEM_COST."""
    return ITEM_COST + (item.size if isinstance(item, LogLines) else 0)


class Subscription:
    """An async iterator of events with a byte-bounded queue. A subscriber that falls
    more than `max_bytes` behind (or furthest behind when the bus is over its total) is
    dropped: what it had queued is freed, it receives a final Notice (topic
    `subscriber_dropped`) and the iteration ends."""

    def __init__(self, bus: EventBus, max_bytes: int, first: Any = None,
                 accept: Callable[[AnyEvent], bool] | None = None) -> None:
        self._bus = bus
        self._accept = accept
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        """What the queued items count (`cost`); 0 once dropped or closed."""
        self.dropped = False
        self.closed = False
        if first is not None:
            self._put(first)

    def _put(self, item: Any) -> None:
        self._items.append(item)
        if item is not None:
            n = cost(item)
            self.queued_bytes += n
            self._bus.queued_bytes += n
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _free(self) -> None:
        self._items.clear()
        self._bus.queued_bytes -= self.queued_bytes
        self.queued_bytes = 0

    def _push(self, ev: AnyEvent) -> None:
        if self.closed or (self._accept is not None and not self._accept(ev)):
            return
        if self.queued_bytes + cost(ev) > self.max_bytes:
            self.drop(f"more than {self.max_bytes >> 20} MiB behind")
            return
        self._put(ev)

    def drop(self, why: str) -> None:
        """End the subscription for being too slow: its queue is freed, a notice and the
        end are all it has left to read."""
        if self.closed:
            return
        behind = self.queued_bytes
        self.dropped = self.closed = True
        self._bus._remove(self)
        self._free()
        self._put(Notice(time.time(), "error", "subscriber too slow: dropped",
                         topic=Topic.SUBSCRIBER_DROPPED,
                         data={"why": why, "queued_bytes": behind}))
        self._put(None)

    def close(self) -> None:
        """The subscriber leaves: nothing is queued for it any more (freed now, not when
        the last reference to this object goes)."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
        self._free()
        self._put(None)

    def end(self) -> None:
        """The engine closes: what is queued is still read, then the iteration ends."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._put(None)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self.get_nowait()
        if item is None:
            self._items.appendleft(None)  # the end stays the end
            raise StopAsyncIteration
        return item

    def get_nowait(self) -> Any:
        """Next queued item (None: the end), or raises asyncio.QueueEmpty."""
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if item is not None:
            n = cost(item)
            self.queued_bytes -= n
            self._bus.queued_bytes -= n
        return item


class EventBus:
    def __init__(self, max_total: int = BUS_MAX_BYTES) -> None:
        self._listeners: list[Listener] = []
        self._subs: list[Subscription] = []
        self.max_total = max_total
        self.queued_bytes = 0
        """What every subscription has queued, together (`cost`)."""

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call `fn` synchronously for every event; returns a function that removes it."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def subscribe(self, max_bytes: int = SUB_MAX_BYTES, first: Any = None,
                  accept: Callable[[AnyEvent], bool] | None = None) -> Subscription:
        """A byte-bounded async subscription; `first` is queued before any event;
        `accept` filters events."""
        sub = Subscription(self, max_bytes, first, accept)
        self._subs.append(sub)
        return sub

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def emit(self, ev: AnyEvent) -> None:
        for fn in tuple(self._listeners):
            fn(ev)
        for sub in tuple(self._subs):
            sub._push(ev)
        if self.queued_bytes > self.max_total and self._subs:
            worst = max(self._subs, key=lambda s: s.queued_bytes)
            worst.drop(f"furthest behind while subscribers held more than "
                       f"{self.max_total >> 20} MiB")

    def close(self) -> None:
        for sub in tuple(self._subs):
            sub.end()
