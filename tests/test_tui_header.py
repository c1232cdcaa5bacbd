"""The dashboard's header (issue 15): its parts and their layout, pure and table-tested;
the restart rate and aggregate availability as defined in docs/METRICS.md."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from tui_supervisor.tui.header import (
    Part,
    RestartSample,
    aggregate_availability,
    config_name,
    cut_words,
    header_parts,
    layout,
    prune,
    restarts_in_window,
    segments,
    state_counts,
)


@pytest.mark.parametrize(("path", "name"), [
    ("/srv/app/tui-supervisor.yaml", "app/tui-supervisor.yaml"),
    ("/usr/lib/python3/site-packages/tui_supervisor/demo/config.example.yaml",
     "config.example.yaml"),
    ("tui-supervisor.yaml", "tui-supervisor.yaml"),
    ("/etc/web.yml", "web.yml"),
    ("?", "?"),
])
def test_config_name_is_never_the_path(path: str, name: str) -> None:
    assert config_name(path) == name


@pytest.mark.parametrize(("counts", "cells", "want"), [
    ([("running", 5)], 12, [("running", 12)]),
    ([("running", 6), ("fatal", 6)], 12, [("running", 6), ("fatal", 6)]),
    # one fatal among 49 still shows; the cells add up
    ([("running", 49), ("fatal", 1)], 12, [("running", 11), ("fatal", 1)]),
    ([("running", 2), ("backoff", 1), ("stopped", 1)], 12,
     [("running", 6), ("backoff", 3), ("stopped", 3)]),
    # more states than cells: one each
    ([("a", 1), ("b", 1), ("c", 1)], 2, [("a", 1), ("b", 1), ("c", 1)]),
    ([("running", 0), ("fatal", 2)], 12, [("fatal", 12)]),
    ([], 12, []),
])
def test_segments_are_proportional_and_add_up(counts: list[tuple[str, int]], cells: int,
                                              want: list[tuple[str, int]]) -> None:
    got = segments(counts, cells)
    assert got == want
    if counts and len([c for c in counts if c[1]]) <= cells:
        assert sum(n for _, n in got) == cells


def test_state_counts_in_order_with_crash_loop() -> None:
    views = [{"state": "stopped"}, {"state": "running"}, {"state": "backoff",
             "crash_looping": True}, {"state": "running"}, {"state": "backoff"}]
    assert state_counts(views) == [("running", 2), ("backoff", 1), ("crash-loop", 1),
                                   ("stopped", 1)]


def rel(up: float | None, down: float | None) -> dict[str, Any]:
    return {"reliability": {"up_time": up, "downtime": down}}


@pytest.mark.parametrize(("views", "want"), [
    ([], None),
    ([{}], None),  # no reliability figures (metrics off)
    ([rel(0.0, 0.0)], None),  # never up nor down
    ([rel(100.0, 0.0)], 1.0),
    # weighted by time: a day up and a minute down is not the mean of 100% and 0%
    ([rel(86400.0, 0.0), rel(0.0, 60.0)], 86400 / 86460),
    ([rel(90.0, 10.0), rel(50.0, 50.0)], 140 / 200),
    ([rel(90.0, 10.0), rel(None, None)], 0.9),
])
def test_aggregate_availability(views: list[dict[str, Any]], want: float | None) -> None:
    assert aggregate_availability(views) == (pytest.approx(want) if want else want)


@pytest.mark.parametrize(("samples", "now", "want"), [
    ([], 100.0, 0),
    ([(0.0, {"a": 3})], 0.0, 0),  # one sample: nothing to compare
    ([(0.0, {"a": 3}), (1.0, {"a": 5})], 1.0, 2),
    ([(0.0, {"a": 3}), (1.0, {"a": 5}), (2.0, {"a": 5, "b": 1})], 2.0, 2),  # b is new
    ([(0.0, {"a": 3}), (0.5, {"a": 4}), (61.0, {"a": 6})], 61.0, 2),  # 0.5 is out
    ([(0.0, {"a": 3}), (61.0, {"a": 6})], 61.0, 3),  # the baseline may be older
    ([(0.0, {"a": 3, "b": 9}), (1.0, {"a": 4})], 1.0, 1),  # b removed by a reload
    ([(0.0, {"a": 3}), (1.0, {"a": 0})], 1.0, 0),  # a counter that went back
    ([(0.0, {"a": 3}), (1.0, {"a": 5})], 200.0, 0),  # all old
])
def test_restarts_in_the_last_minute(samples: list[RestartSample], now: float,
                                     want: int) -> None:
    assert restarts_in_window(samples, now) == want


def test_prune_keeps_the_baseline() -> None:
    d: deque[RestartSample] = deque((float(t), {"a": t}) for t in range(0, 100, 10))
    prune(d, 100.0)
    assert [t for t, _ in d] == [40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    assert restarts_in_window(list(d), 100.0) == 50


def test_cut_words_never_mid_word() -> None:
    t = Text("web: exited with code 1")
    assert cut_words(t, 40) is t
    assert cut_words(t, 16).plain == "web: exited…"  # type: ignore[union-attr]
    assert cut_words(t, 4) is None


ENGINE = {"config": "/usr/lib/python3/site-packages/tui_supervisor/demo/config.example.yaml",
          "host": "build-host-7", "pid": 4242, "uptime": 3725.0, "reloads": 2,
          "resources": {"cpu_percent": 1.5, "rss_bytes": 38 << 20}}
VIEWS = [{"state": "running", **rel(3600.0, 0.0)}] * 5 + [
    {"state": "backoff", "crash_looping": True, **rel(100.0, 200.0)},
    {"state": "fatal"}, {"state": "stopped"}]
WORDS = ["config.example.yaml", "on build-host-7",
         "5 running  1 crash-loop  1 fatal  1 stopped", "3 restarts/min", "avail 98.90%",
         "engine CPU 1.5% RSS 38.0M", "up 1h02m",
         "pid 4242 (attached)", "reloads 2"]


def plain(width: int, *, notice: bool = True, alarm: str | None = None) -> list[str]:
    parts = header_parts(ENGINE, VIEWS, mode="attached", restarts=3, wall=1000.0,
                         notice=(988.0, "error", "worker: exited with code 1 (crash "
                                 "loop: 5 failures in 60s)") if notice else None,
                         alarm=alarm)
    return [line.plain for line in layout(parts, width, 3 if alarm else 2)]


@pytest.mark.parametrize("width", [80, 140, 200])
@pytest.mark.parametrize("notice", [True, False])
@pytest.mark.parametrize("alarm", [None, "[b red]config error:[/] web: command: missing "
                                         "(tui-supervisor.yaml:12)"])
def test_layout_fits_and_cuts_no_word(width: int, notice: bool, alarm: str | None) -> None:
    lines = plain(width, notice=notice, alarm=alarm)
    assert 1 <= len(lines) <= (3 if alarm else 2)
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    for word in WORDS:  # every part is there whole, or not at all (not even its start)
        assert word in text or word.split()[0] not in text.split(), word
    assert WORDS[0] in lines[0]  # the config's name always, first
    assert "5 running" in text  # the counts in words: readable without colour
    if alarm:
        assert lines[-1].startswith("config error: web: command:")
    if notice:
        assert "✖ 12s ago worker: exited" in text


@pytest.mark.parametrize(("width", "want"), [
    (200, ["config.example.yaml on build-host-7 · 5 running  1 crash-loop  1 fatal  1 stopped"
           " ██████▒▒▒▒░░ · 3 restarts/min · avail 98.90% · engine CPU 1.5% RSS 38.0M · "
           "up 1h02m · pid 4242 (attached) · reloads 2",
           "✖ 12s ago worker: exited with code 1 (crash loop: 5 failures in 60s)"]),
    (140, ["config.example.yaml on build-host-7 · 5 running  1 crash-loop  1 fatal  1 stopped"
           " ██████▒▒▒▒░░ · 3 restarts/min · avail 98.90%",
           "engine CPU 1.5% RSS 38.0M · up 1h02m · pid 4242 (attached) · reloads 2 · ✖ 12s ago "
           "worker: exited with code 1 (crash loop: 5 failures in…"]),
    # 80: the least important go (pid, reloads, uptime, engine, host, the bar); the notice
    # fills the rest of the second line, cut at a word
    (80, ["config.example.yaml · 5 running  1 crash-loop  1 fatal  1 stopped",
          "3 restarts/min · avail 98.90% · ✖ 12s ago worker: exited with code 1 (crash…"]),
])
def test_layout_by_width(width: int, want: list[str]) -> None:
    assert plain(width) == want


def test_without_a_notice_the_second_line_takes_more() -> None:
    assert plain(80, notice=False) == [
        "config.example.yaml on build-host-7",
        "5 running  1 crash-loop  1 fatal  1 stopped · 3 restarts/min · avail 98.90%"]


def test_a_part_wider_than_the_line_is_dropped_or_cut_at_a_word() -> None:
    parts = [Part(Text("name"), 0), Part(Text("x" * 30), 1),
             Part(Text("a long notice that goes on"), 2, cut=True)]
    assert [t.plain for t in layout(parts, 20, 2)] == ["name", "a long notice that…"]


def test_styles_stay_on_their_part() -> None:
    """The name is bold, the counts in their state's colour; nothing else (a base style
    would spread to every part appended after it)."""
    parts = header_parts(ENGINE, VIEWS, mode="hosted", restarts=0, wall=0.0, notice=None,
                         alarm=None)
    line = layout(parts, 200, 2)[0]
    assert line.style == ""
    bold = [line.plain[s.start:s.end] for s in line.spans if s.style == "bold"]
    assert bold == ["config.example.yaml"]
    assert [line.plain[s.start:s.end] for s in line.spans if s.style == "green"] == [
        "5 running", "██████"]


async def test_a_real_crash_loop_in_the_header(make_app, tmp_path: Path) -> None:
    """A real engine and a service that keeps crashing: the header counts its restarts
    in the last minute, says the crash loop's notice with its age, and names the config
    by its file name and the engine's host."""
    import socket

    from conftest import child, spec
    from support import SIZE, settle

    from tui_supervisor.config.schema import CrashLoopSpec

    _, app = await make_app(spec("a", child("crash", "1", "0.1"), tmp_path,
                                 crash_loop=CrashLoopSpec(max_failures=3, window=60)))
    async with app.run_test(size=SIZE) as pilot:
        def said() -> str:
            return app._widgets[3]._text.plain if app._widgets else ""

        await settle(pilot, lambda: "✖" in said() and " restarts/min" in said()
                     and not said().startswith("0 ") and " 0 restarts/min" not in said(),
                     "restarts counted and the crash loop said")
        text = said()
        assert text.startswith(app.store.engine["config"].rsplit("/", 1)[-1])
        assert f"on {socket.gethostname()}" in text
        assert "✖ " in text and "ago a: crash loop" in text
        assert len(text.splitlines()) <= 2
