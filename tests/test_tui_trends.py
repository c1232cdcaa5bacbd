"""The services table's trends and badges: text sparklines, restarts in the last hour,
state symbols, and which columns a width shows (all pure: exact text)."""

from __future__ import annotations

from collections import deque

import pytest

from tui_supervisor.formatting import STATE_COLOURS, STATE_SYMBOLS, state_symbol
from tui_supervisor.tui.rows import COLUMNS, PAD, TREND_WIDE, WIDTHS, badge, cells, columns_for
from tui_supervisor.tui.store import TREND_POINTS, ServiceInfo, Store
from tui_supervisor.tui.trends import buckets, cpu_trend, mem_trend, sparkline


@pytest.mark.parametrize(("values", "width", "first", "span", "expected"), [
    ([], 4, 0, 8, [None] * 4),
    ([1.0, 2.0, 3.0], 3, 0, 3, [1.0, 2.0, 3.0]),  # one point per character
    ([1.0, 5.0, 2.0, 2.0], 2, 0, 4, [5.0, 2.0]),  # buckets of 2: their peak
    ([7.0], 3, 0, 3, [None, None, 7.0]),  # young history: right-aligned
    # bucketed by absolute index: 5 is the second of its bucket (4, 5), 6 starts one
    ([1.0, 2.0, 3.0], 2, 5, 4, [1.0, 3.0]),
    ([1.0], 0, 0, 3, []),
])
def test_buckets(values: list[float], width: int, first: int, span: int,
                 expected: list[float | None]) -> None:
    assert buckets(values, width, first, span) == expected


@pytest.mark.parametrize(("points", "lo", "hi", "expected"), [
    ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 0.0, 7.0, "▁▂▃▄▅▆▇█"),
    ([None, 0.0, 7.0], 0.0, 7.0, " ▁█"),
    ([-3.0, 99.0], 0.0, 7.0, "▁█"),  # clamped
    ([2.0, 2.0], 2.0, 2.0, "▁▁"),  # flat: the baseline
])
def test_sparkline(points: list[float | None], lo: float, hi: float, expected: str) -> None:
    assert sparkline(points, lo, hi) == expected


def test_cpu_and_mem_scales() -> None:
    assert cpu_trend([0.0, 0.1, 0.0], 3, 0, 3) == "▁▂▁"  # idle noise stays low (1% floor)
    assert cpu_trend([0.0, 50.0, 100.0], 3, 0, 3) == "▁▅█"
    mb = 1 << 20
    assert mem_trend([40 * mb, 40 * mb + 4096], 2, 0, 2) == "██"  # jitter: not a trend
    assert mem_trend([40 * mb, 44 * mb, 48 * mb], 3, 0, 3) == "▁▅█"  # a leak shows
    assert mem_trend([], 3, 0) == "   "
    assert len(cpu_trend([1.0] * 300, 10, 0)) == 10  # 5 minutes in 10 characters


def test_a_steady_trend_keeps_its_text_between_points() -> None:
    """A cell's text changes only when a bucket's peak does: no repaint per tick for a
    steady service (the table writes only changed cells)."""
    values = deque([5.0] * TREND_POINTS, maxlen=TREND_POINTS)
    texts = set()
    for i in range(60):  # a full window: the oldest point drops as a new one comes
        values.append(5.0)
        texts.add(cpu_trend(values, 10, 1 + i))
    assert len(texts) <= 3  # a bucket emptying at the left edge every 30 points
    young: deque[float] = deque(maxlen=TREND_POINTS)
    texts = set()
    for _ in range(60):  # history still filling
        young.append(5.0)
        texts.add(cpu_trend(young, 10, 0))
    assert len(texts) == 2  # a new bucket every 30 points, not a new text every tick


def snap(t: float, cpu: float, rss: int, procs: int = 1) -> dict:
    return {"engine": {}, "services": [{"name": "a", "state": "running", "resources": {
        "procs": procs, "cpu_percent": cpu, "rss_bytes": rss, "sampled_at": t}}]}


def test_store_keeps_one_point_per_sample() -> None:
    s = Store()
    s.load_snapshot(snap(100.0, 2.0, 10))
    s.load_snapshot(snap(100.0, 2.0, 10))  # the same sample, seen again: no point
    s.load_snapshot(snap(101.0, 3.0, 20, procs=0))  # no process: uses nothing
    info = s.services["a"]
    assert list(info.trend["cpu"]) == [2.0, 0.0] and list(info.trend["mem"]) == [10.0, 0.0]
    assert info.trend_first == 0 and info.view["_trend"] is info
    for i in range(TREND_POINTS + 5):
        s.load_snapshot(snap(200.0 + i, 1.0, 1))
    assert len(info.trend["cpu"]) == TREND_POINTS and info.trend_first == 7  # bounded


def test_backfill_goes_before_the_live_points_without_repeating_them() -> None:
    info = ServiceInfo("a")
    info.add_point({"procs": 1, "cpu_percent": 9.0, "rss_bytes": 90, "sampled_at": 105.0})
    history = {"interval": 1.0, "t_last": 105.0, "series": {  # t = 101 .. 105
        "cpu_percent": [1.0, None, 3.0, 4.0, 9.0], "rss_bytes": [10, None, 30, 40, 90],
        "procs": [1, None, 1, 0, 1]}}
    info.backfill(history)
    assert list(info.trend["cpu"]) == [1.0, 0.0, 3.0, 0.0, 9.0]  # 105 is the live one
    assert list(info.trend["mem"]) == [10.0, 0.0, 30.0, 0.0, 90.0]
    assert info.trend_first == -4  # the live point keeps its index 0: buckets stay put
    empty = ServiceInfo("b")
    empty.backfill({"interval": 1.0, "t_last": None, "series": {}})
    assert not empty.trend["cpu"]


# -- badges ---------------------------------------------------------------------------
def test_every_state_has_one_distinct_symbol_per_meaning() -> None:
    assert set(STATE_COLOURS) <= set(STATE_SYMBOLS)
    up = {STATE_SYMBOLS[s] for s in ("running", "daemonized")}
    assert len(up) == 1
    others = {k: v for k, v in STATE_SYMBOLS.items() if k not in ("running", "daemonized",
                                                                   "fatal", "crash-loop")}
    assert len(set(others.values())) == len(others)  # the rest: one symbol each
    assert state_symbol("no-such-state") == "?"


@pytest.mark.parametrize(("view", "text"), [
    ({"state": "running"}, "● running"),
    ({"state": "starting"}, "◐ starting"),
    ({"state": "backoff", "consecutive_failures": 2, "crash_loop": {"max_failures": 5}},
     "↻ backoff (2/5)"),
    ({"state": "backoff", "crash_looping": True}, "✖ crash-loop"),
    ({"state": "fatal", "reason": "spawn failed"}, "✖ fatal: spawn failed"),
    ({"state": "stopped"}, "■ stopped"),
    ({"state": "completed"}, "✓ completed"),
    ({"state": "waiting", "reason": "waiting for db (ready)"}, "… waiting for db (ready)"),
])
def test_badge_text_carries_the_state_without_colour(view: dict, text: str) -> None:
    assert badge(view) == text
    assert len(text) <= WIDTHS["state"]


def test_restarts_in_the_last_hour_cell() -> None:
    assert cells({"name": "a", "state": "running", "restarts": 7,
                  "restarts_1h": 2})["restarts_1h"] == "2"
    assert cells({"name": "a", "state": "running"})["restarts_1h"] == "-"  # older engine


# -- columns by width ------------------------------------------------------------------
def shown(width: int, name: int = 8) -> list[str]:
    return [k for k, _, _ in columns_for(width, name)]


def test_columns_for_the_three_size_classes() -> None:
    small = shown(80)
    assert small[:2] == ["name", "state"]
    assert {"cpu", "mem", "restarts", "restarts_1h"} <= set(small)
    assert not {"last", "mttr", "failures", "cpu_trend"} & set(small)
    medium = shown(140)
    assert {"cpu_trend", "mem_trend", "health", "uptime"} <= set(medium)
    assert "mttr" not in medium
    large = columns_for(200)
    assert [k for k, _, _ in large] == [k for k, _ in COLUMNS]  # everything, in order
    widths = dict((k, w) for k, _, w in large)
    assert widths["cpu_trend"] == widths["mem_trend"] > WIDTHS["cpu_trend"]
    assert widths["cpu_trend"] <= TREND_WIDE


@pytest.mark.parametrize("width", [0, 20, 60, 80, 100, 120, 140, 160, 200, 300])
@pytest.mark.parametrize("name", [4, 8, 24])
def test_columns_fit_whole(width: int, name: int) -> None:
    cols = columns_for(width, name)
    total = sum(w + PAD for _, _, w in cols)
    assert cols[0][0] == "name"
    assert len(cols) == 1 or total <= width - 2  # the name is always there; the rest fit
    assert [k for k, _, _ in cols] == [k for k, _ in COLUMNS if k in dict(
        (c[0], 1) for c in cols)]  # display order kept


async def test_no_color_keeps_the_meaning_in_the_symbols(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """With NO_COLOR set Textual drops the colours (its Monochrome filter); the STATE
    cells still say running / backoff / fatal apart by their symbols, and the trend and
    1H cells are there."""
    from support import T0, FixedAPI, rows, settle
    from textual.filter import Monochrome

    from tui_supervisor.tui.app import SupervisorApp

    monkeypatch.setenv("NO_COLOR", "1")
    app = SupervisorApp(FixedAPI(), mode="attached", clock=lambda: 1000.0,
                        wall_clock=lambda: T0)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 4, "the table")
        assert app.no_color and any(isinstance(f, Monochrome) for f in app._filters)
        r = rows(app)
        assert [r[n]["state"][:2] for n in r] == ["● ", "↻ ", "● ", "✖ "]
        assert r["worker"]["restarts_1h"] == "3"
        await settle(pilot, lambda: set(rows(app)["web"]["cpu_trend"].strip()) <= set(
            "▁▂▃▄▅▆▇█") and rows(app)["web"]["cpu_trend"].strip(), "back-filled trend")


def test_trend_cells_are_drawn_again_only_for_a_new_point() -> None:
    from tui_supervisor.tui.rows import trend_cells

    info = ServiceInfo("a")
    info.add_point({"procs": 1, "cpu_percent": 1.0, "rss_bytes": 5, "sampled_at": 1.0})
    first = trend_cells(info, 10)
    assert trend_cells(info, 10) is first  # the same point: the same texts
    assert trend_cells(info, 20) is not first  # another width
    info.add_point({"procs": 1, "cpu_percent": 50.0, "rss_bytes": 9, "sampled_at": 2.0})
    assert trend_cells(info, 20)["cpu_trend"] == " " * 19 + "█"  # one bucket: its peak
    info.backfill({"interval": 1.0, "t_last": 0.0, "series": {
        "cpu_percent": [50.0], "rss_bytes": [1], "procs": [1]}})
    assert trend_cells(info, 20)["cpu_trend"] == " " * 18 + "██"  # history came: redrawn


async def test_the_table_refits_its_columns_on_resize_keeping_the_cursor() -> None:
    from support import T0, FixedAPI, rows, settle

    from tui_supervisor.tui.app import SupervisorApp

    app = SupervisorApp(FixedAPI(), mode="attached", clock=lambda: 1000.0,
                        wall_clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 4, "the table")
        small = list(rows(app)["web"])
        assert "last" not in small and "state" in small
        app.table.select("chatty")
        await pilot.resize_terminal(200, 40)  # (medium: the table has the width)
        await settle(pilot, lambda: "last" in rows(app).get("web", {}), "wider")
        assert app.table.selected == "chatty"
        assert rows(app)["nightly"]["last"] == "-" and rows(app)["worker"]["last"] == \
            "exit code 3"
        await pilot.resize_terminal(80, 24)
        await settle(pilot, lambda: list(rows(app).get("web", {})) == small, "narrow again")
        assert app.table.selected == "chatty"
