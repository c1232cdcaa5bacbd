"""Cost of the log pane under a flood: one service printing 50k lines/s, fed at 10 ticks/s
(5,000 lines per tick) into a Store holding 300 services, the pane headless at 120x40.

    PYTHONPATH=$PWD /work/venv/bin/python bench/tui_logview.py [--ticks N] [--ansi]

Per tick it times, separately: the store appends (`Store.apply`, not the pane's cost);
`LogView.lines_added`; rendering every visible line (`render_line`, what a repaint asks of
the widget); and `lines_added` plus a forced full-screen Textual repaint (layout, compositor
`render_update(full=True)`, headless driver: an upper bound of a tick's repaint), these two
on alternate ticks so each sees uncached lines. Views: the noisy service, a quiet one, and
all merged. `--richlog`: for reference, the same lines through `RichLog.write`, one call
per line, plus a repaint. `--search PATTERN`: a search active during the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import RichLog

from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.logview import LogView

RATE, TICKS_PER_S, EVENT_LINES = 50_000, 10, 64
PER_TICK = RATE // TICKS_PER_S
SERVICES = 300


class Bench(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        yield LogView(self.store)


def make_store() -> Store:
    st = Store()
    st.load_snapshot({"engine": {}, "services": [{"name": f"svc-{i:03d}", "state": "running"}
                                                  for i in range(SERVICES)]})
    for i in range(SERVICES):  # some history everywhere
        st.apply({"kind": "log", "t": time.time(), "service": f"svc-{i:03d}",
                  "stream": "stdout", "lines": [f"svc {i} boot {k}" for k in range(20)]})
    st.take_lines()
    return st


def feed(st: Store, seq: int, ansi: bool) -> int:
    """One tick of the noisy service, in events of EVENT_LINES lines like the engine's."""
    now = time.time()
    fmt = "\x1b[32mINFO\x1b[0m request {} served in 3ms path=/api/v1/items" if ansi else \
        "INFO request {} served in 3ms path=/api/v1/items"
    for start in range(seq, seq + PER_TICK, EVENT_LINES):
        st.apply({"kind": "log", "t": now, "service": "svc-000", "stream": "stdout",
                  "lines": [fmt.format(k) for k in range(start, start + EVENT_LINES)]})
    return seq + PER_TICK


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"median {statistics.median(xs) * 1e3:7.3f} ms  "
            f"p95 {xs[int(len(xs) * 0.95) - 1] * 1e3:7.3f} ms  max {xs[-1] * 1e3:7.3f} ms")


async def run_view(service: str | None, ticks: int, ansi: bool,
                   search: str | None) -> dict[str, list[float]]:
    st = make_store()
    app = Bench(st)
    out: dict[str, list[float]] = {"store.apply": [], "lines_added": [], "render_lines": [],
                                   "lines_added+repaint": []}
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(LogView)
        view.show(service)
        if search:
            view.search(search)
        await pilot.pause()
        seq = 0
        for tick in range(ticks):
            t0 = time.perf_counter()
            seq = feed(st, seq, ansi)
            t1 = time.perf_counter()
            view.lines_added(st.take_lines())
            t2 = time.perf_counter()
            out["store.apply"].append(t1 - t0)
            out["lines_added"].append(t2 - t1)
            if tick % 2:  # the widget's share of a repaint: every visible line, uncached
                height = view.scrollable_content_region.height
                for y in range(height):
                    view.render_line(y)
                out["render_lines"].append(time.perf_counter() - t2)
            else:  # a forced full-screen repaint, synchronously: layout, compositor, driver
                screen = app.screen
                screen._refresh_layout()
                app._display(screen, screen._compositor.render_update(full=True))
                out["lines_added+repaint"].append(time.perf_counter() - t1)
            await pilot.pause()
        assert len(st.merged) == st.merged.maxlen
    return out


async def run_richlog(ticks: int) -> list[float]:
    class RL(App[None]):
        def compose(self) -> ComposeResult:
            yield RichLog(max_lines=5000)

    app = RL()
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(RichLog)
        seq = 0
        for _ in range(ticks):
            lines = [f"INFO request {k} served in 3ms path=/api/v1/items"
                     for k in range(seq, seq + PER_TICK)]
            seq += PER_TICK
            t0 = time.perf_counter()
            for line in lines:
                log.write(line)
            await pilot.pause()
            times.append(time.perf_counter() - t0)
    return times


def report(name: str, run: Callable[[], Any]) -> None:
    res = asyncio.run(run())
    print(f"\n{name}")
    for key, xs in res.items():
        print(f"  {key:<22} {ms(xs)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=50)
    ap.add_argument("--ansi", action="store_true", help="every line coloured with SGR codes")
    ap.add_argument("--search", help="a search active during the flood (e.g. 'served in 3')")
    ap.add_argument("--richlog", action="store_true", help="also time RichLog.write per line")
    args = ap.parse_args()
    print(f"{RATE} lines/s to one service at {TICKS_PER_S} ticks/s = {PER_TICK} lines/tick, "
          f"{SERVICES} services, 120x40, {args.ticks} ticks, ansi={args.ansi}, "
          f"search={args.search!r}")
    for label, service in (("view: the noisy service", "svc-000"),
                           ("view: a quiet service", "svc-150"),
                           ("view: all services merged", None)):
        report(label, lambda s=service: run_view(s, args.ticks, args.ansi, args.search))
    if args.richlog:
        times = asyncio.run(run_richlog(min(args.ticks, 10)))
        print(f"\nreference: RichLog.write per line + repaint  {ms(times)}")


if __name__ == "__main__":
    main()
