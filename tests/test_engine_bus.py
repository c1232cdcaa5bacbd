"""The event bus's bounds: a subscriber is dropped by the bytes it has queued (not by a
count of events, each of which may carry a 256 KiB read), its queue freed at once when it
is dropped or leaves, and all subscribers together are bounded too."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from tui_supervisor.engine.bus import ITEM_COST, EventBus, cost
from tui_supervisor.engine.events import LogLines, Notice, StateChanged, Topic


def log(size: int, offset: int = 0) -> LogLines:
    data = b"x" * (size - 1) + b"\n"
    return LogLines(0.0, "a", "stdout", offset, [data], size)


def state() -> StateChanged:
    return StateChanged(0.0, "a", "stopped", "running", 1, "spawned")


def test_cost_is_the_output_bytes_plus_a_fixed_charge() -> None:
    assert cost(log(1000)) == 1000 + ITEM_COST
    assert cost(state()) == ITEM_COST
    assert cost({"kind": "snapshot"}) == ITEM_COST


@pytest.mark.parametrize(("sizes", "max_bytes", "kept"), [
    ([100_000] * 10, 1 << 20, 10),            # 1 MB under a 1 MiB cap: all kept
    ([100_000] * 11, 1 << 20, None),          # the 11th goes over: dropped
    ([256 << 10] * 4, 1 << 20, None),         # 4 reads of 256 KiB: over by the charges
    ([256 << 10] * 3, 1 << 20, 3),
    ([10] * 3900, 1 << 20, 3900),             # tiny events count their charge
    ([10] * 4000, 1 << 20, None),
])
def test_dropped_by_bytes_not_events(sizes: list[int], max_bytes: int,
                                     kept: int | None) -> None:
    bus = EventBus()
    sub = bus.subscribe(max_bytes=max_bytes)
    for s in sizes:
        bus.emit(log(s))
    if kept is not None:
        assert not sub.dropped and bus.subscribers == 1
        assert sub.queued_bytes == bus.queued_bytes == sum(map(cost, map(log, sizes)))
        assert len(sub._items) == kept
        return
    assert sub.dropped and bus.subscribers == 0
    # what it had queued is freed at once: a notice and the end are all it has left
    assert [type(i) for i in sub._items] == [Notice, type(None)]
    note = sub._items[0]
    assert note.topic == Topic.SUBSCRIBER_DROPPED
    assert note.message == "subscriber too slow: dropped"
    assert note.data["queued_bytes"] <= max_bytes
    assert sub.queued_bytes == bus.queued_bytes == ITEM_COST


async def test_dropped_subscriber_reads_the_notice_then_ends() -> None:
    bus = EventBus()
    sub = bus.subscribe(max_bytes=4096, first={"kind": "snapshot"})
    for i in range(100):
        bus.emit(log(100, i * 100))
    items = [item async for item in sub]
    assert len(items) == 1 and items[0].topic == Topic.SUBSCRIBER_DROPPED
    assert [item async for item in sub] == []  # the end stays the end
    sub.close()
    assert bus.queued_bytes == 0


async def test_a_reader_that_keeps_up_is_never_dropped() -> None:
    bus = EventBus()
    sub = bus.subscribe(max_bytes=64 << 10)
    got = 0
    for i in range(2000):  # 20 MB through a 64 KiB bound
        bus.emit(log(10_000, i * 10_000))
        got += (await anext(sub)).size
    assert got == 2000 * 10_000 and not sub.dropped and bus.queued_bytes == 0


def test_all_subscribers_together_are_bounded_furthest_behind_goes_first() -> None:
    bus = EventBus(max_total=1 << 20)
    behind = bus.subscribe(max_bytes=1 << 20)
    for _ in range(6):
        bus.emit(log(100_000))
    other = bus.subscribe(max_bytes=1 << 20)
    for _ in range(5):  # 11 events queued in all: over 1 MiB together
        bus.emit(log(100_000))
    assert behind.dropped and not other.dropped
    assert bus.queued_bytes == other.queued_bytes + ITEM_COST  # (+ behind's notice)


async def test_close_frees_the_queue_end_keeps_it() -> None:
    bus = EventBus()
    leaving, staying = bus.subscribe(), bus.subscribe()
    for i in range(10):
        bus.emit(log(1000, i * 1000))
    leaving.close()
    assert bus.subscribers == 1 and leaving.queued_bytes == 0 and len(leaving._items) == 1
    assert [i async for i in leaving] == []
    bus.close()  # the engine closing: what is queued is still read
    assert len([i async for i in staying]) == 10
    assert bus.queued_bytes == 0


async def test_a_waiting_reader_is_woken_by_close() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    task = asyncio.ensure_future(anext(sub, "ended"))
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(task, 5) == "ended"


def test_a_left_subscription_is_freed_without_a_collection() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    bus.emit(log(1000))
    ref = weakref.ref(sub)
    gc.disable()
    try:
        sub.close()
        del sub
        assert ref() is None
    finally:
        gc.enable()
