"""The log pane, driven by Pilot over a real Store fed with subscription events: what is
RENDERED (the widget's strips) follows, pauses, resumes, switches, merges, searches,
colours and stays bounded."""

from __future__ import annotations

import time
from typing import Any

from rich.color import Color
from textual.app import App, ComposeResult
from textual.strip import Strip

from tui_supervisor.tui.logtext import name_colour, plain_text, sanitize
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.logview import LogView

SIZE = (100, 30)
ROWS = 28  # 30 minus the border


class Harness(App[None]):
    """The log pane alone, fed like the real app: events -> store -> one call per tick."""

    def __init__(self, store: Store, service: str | None = "web") -> None:
        super().__init__()
        self.store, self.service = store, service

    def compose(self) -> ComposeResult:
        yield LogView(self.store, id="log")

    def on_mount(self) -> None:
        self.view.show(self.service)

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def tick(self) -> None:
        self.view.lines_added(self.store.take_lines())


def make_store(*names: str, **kw: Any) -> Store:
    st = Store(**kw)
    st.load_snapshot({"engine": {}, "services": [{"name": n, "state": "running"}
                                                  for n in names or ("web", "db")]})
    return st


def log(st: Store, service: str, lines: list[str], stream: str = "stdout",
        t: float = 1_700_000_000.0) -> None:
    st.apply({"kind": "log", "t": t, "service": service, "stream": stream, "offset": 0,
              "lines": lines})


def rows(view: LogView) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


def styled(strip: Strip, text: str) -> list[Any]:
    """Styles of the segments whose text is exactly `text`."""
    return [seg.style for seg in strip if seg.text == text]


async def test_follows_new_lines() -> None:
    st = make_store()
    log(st, "web", [f"web {i}" for i in range(50)])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        assert len(rows(v)) == ROWS
        assert rows(v)[-1] == " web 49" and rows(v)[0] == " web 22"
        log(st, "web", [f"web {i}" for i in range(50, 55)])
        app.tick()
        await pilot.pause()
        assert rows(v)[-1] == " web 54" and rows(v)[0] == " web 27"
        assert v.following and v.border_subtitle == "following"
        log(st, "db", ["db only"])  # another service's lines: nothing moves
        app.tick()
        await pilot.pause()
        assert rows(v)[-1] == " web 54"


async def test_scroll_up_pauses_and_end_resumes() -> None:
    st = make_store()
    log(st, "web", [f"web {i}" for i in range(50)])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        await pilot.press("up", "up", "up")
        await pilot.pause()
        assert not v.following and v.border_subtitle == "paused — end to follow"
        assert rows(v)[0] == " web 19" and rows(v)[-1] == " web 46"
        log(st, "web", [f"web {i}" for i in range(50, 60)])
        app.tick()
        await pilot.pause()
        assert rows(v)[0] == " web 19" and rows(v)[-1] == " web 46"  # paused: stays put
        await pilot.press("end")
        await pilot.pause()
        assert v.following and v.border_subtitle == "following"
        assert rows(v)[-1] == " web 59"
        log(st, "web", ["web 60"])
        app.tick()
        await pilot.pause()
        assert rows(v)[-1] == " web 60"


async def test_scrolling_back_to_the_bottom_resumes() -> None:
    st = make_store()
    log(st, "web", [f"web {i}" for i in range(50)])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        await pilot.press("up", "up")
        await pilot.pause()
        assert not v.following
        await pilot.press("down")
        await pilot.pause()
        assert not v.following and rows(v)[-1] == " web 48"
        await pilot.press("down")
        await pilot.pause()
        assert v.following and rows(v)[-1] == " web 49"


async def test_long_lines_scroll_horizontally_unwrapped() -> None:
    st = make_store()
    long = "".join(f"{i:03d}|" for i in range(60))  # 240 characters
    log(st, "web", [long, "short"])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        assert rows(v)[:2] == [" " + long[:97], " short"]  # 98 columns, no wrapping
        assert v.virtual_size.width == 241 and v.max_scroll_x == 241 - 98
        v.scroll_to(x=200, animate=False)  # clamped to the end of the longest line
        await pilot.pause()
        assert rows(v)[0] == long[142:] and v.following


async def test_unknown_or_empty_service_shows_a_placeholder() -> None:
    st = make_store()
    app = Harness(st, service="nope")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        v = app.view
        assert rows(v)[:2] == [" (no output yet)", ""] and v.line_count == 0
        log(st, "web", ["elsewhere"])
        app.tick()
        await pilot.pause()
        assert rows(v)[0] == " (no output yet)" and v.following


async def test_paused_view_keeps_its_text_while_old_lines_drop() -> None:
    st = make_store(per_service=100)
    log(st, "web", [f"web {i}" for i in range(100)])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        await pilot.press("pageup")
        await pilot.pause()
        before = rows(v)
        assert not v.following and before[0] == " web 44"
        log(st, "web", [f"web {i}" for i in range(100, 130)])  # 30 oldest lines dropped
        app.tick()
        await pilot.pause()
        assert len(st.services["web"].lines) == 100 and v.line_count == 100
        assert rows(v) == before
        assert v.scroll_y == 14


async def test_switching_service_shows_its_history() -> None:
    st = make_store()
    for i in range(40):
        log(st, "web", [f"web {i}"])
        log(st, "db", [f"db {i}"], stream="stderr")
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        assert rows(v)[-1] == " web 39"
        v.show("db")
        await pilot.pause()
        assert rows(v) == [f"▌db {i}" for i in range(12, 40)]
        assert v.border_title == "logs · db"
        log(st, "web", ["web 40"])
        app.tick()
        v.show("web")
        await pilot.pause()
        assert rows(v) == [f" web {i}" for i in range(13, 41)] and v.following


async def test_merged_mode_prefixes_each_line_with_a_stable_colour() -> None:
    st = make_store("web", "database")
    log(st, "web", ["hello"])
    log(st, "database", ["ready"], stream="stderr")
    log(st, "web", ["bye"])
    app = Harness(st, service=None)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        assert rows(v)[:3] == [" web      hello", "▌database ready", " web      bye"]
        assert v.border_title == "logs · all services"
        web, db = v.render_line(0), v.render_line(1)
        assert [s.color for s in styled(web, "web      ")] == [Color.parse(name_colour("web"))]
        assert [s.color for s in styled(db, "database ")] == [
            Color.parse(name_colour("database"))]
        assert name_colour("web") == name_colour("web") != name_colour("database")


async def test_search_highlights_and_n_N_move_between_matches() -> None:
    st = make_store()
    lines = [f"line {i}" + (" ERROR x error" if i % 10 == 3 else "") for i in range(100)]
    log(st, "web", lines)
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        v.search("error")
        await pilot.pause()
        assert v.match_count == 10 and v.current_match == 93
        assert v.border_subtitle == "following · 10/10 'error'"
        y93 = rows(v).index(" line 93 ERROR x error")
        y83 = rows(v).index(" line 83 ERROR x error")
        current, other = v.render_line(y93), v.render_line(y83)
        assert [s.bgcolor for s in styled(current, "ERROR") + styled(current, "error")] == [
            Color.parse("dark_orange")] * 2
        assert [s.bgcolor for s in styled(other, "ERROR") + styled(other, "error")] == [
            Color.parse("yellow")] * 2
        assert styled(v.render_line(y93 - 1), "error") == []
        await pilot.press("n")  # wraps to the oldest match, which scrolls into view
        await pilot.pause()
        assert v.current_match == 3 and v.border_subtitle.endswith("1/10 'error'")
        assert not v.following and rows(v)[3] == " line 3 ERROR x error"
        await pilot.press("n")
        await pilot.pause()
        assert v.current_match == 13 and v.border_subtitle.endswith("2/10 'error'")
        await pilot.press("N", "N")
        await pilot.pause()
        assert v.current_match == 93 and v.border_subtitle.endswith("10/10 'error'")
        assert " line 93 ERROR x error" in rows(v)
        v.search("ERROR")  # a capital: case-sensitive
        await pilot.pause()
        assert v.match_count == 10
        y = rows(v).index(" line 93 ERROR x error")
        assert styled(v.render_line(y), "error") == []
        v.search("line 5")
        assert v.match_count == 11  # line 5, line 50..59
        await pilot.press("escape")
        await pilot.pause()
        assert v.match_count == 0 and "'" not in v.border_subtitle
        assert all(s.style is None or s.style.bgcolor != Color.parse("yellow")
                   for s in v.render_line(y))


async def test_search_follows_new_and_dropped_lines() -> None:
    st = make_store(per_service=50)
    log(st, "web", [f"x {i}" + (" hit" if i % 5 == 0 else "") for i in range(50)])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        v.search("hit")
        assert v.match_count == 10 and v.current_match == 45
        log(st, "web", [f"y {i}" + (" hit" if i < 2 else "") for i in range(20)])
        app.tick()
        await pilot.pause()
        # 20 dropped (4 matches: x 0,5,10,15), 2 added; the current one moved up by 20
        assert v.match_count == 8 and v.current_match == 25
        assert v.border_subtitle == "following · 6/8 'hit'"
        await pilot.press("N")
        assert v.current_match == 20


async def test_ansi_colours_rendered_and_control_codes_dropped() -> None:
    st = make_store()
    log(st, "web", ["\x1b[31mred alert\x1b[0m plain \x1b[2K\x1b[10Gdone\x07 \x1b]0;title\x07ok",
                    "50%\r100%", "a\tb\x00c"])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        assert rows(v)[:3] == [" red alert plain done ok", " 100%", " a       bc"]
        strip = v.render_line(0)
        assert "\x1b" not in strip.text
        assert [s.color.number for s in styled(strip, "red alert")] == [1]  # ANSI red
        assert [s.color.number for s in styled(strip, " plain done ok")] != [1]


def test_sanitize_keeps_only_colour() -> None:
    assert sanitize("\x1b[1;31mA\x1b[0m\x1b[H\x1b[?25l\x1b(B\x1b7B\x1b") == "\x1b[1;31mA\x1b[0mB"
    assert plain_text("\x1b[1;31mA\x1b[0m\x1b[HB\r\n") == "AB"
    assert sanitize("clean line") == "clean line"


async def test_stderr_lines_are_marked() -> None:
    st = make_store()
    log(st, "web", ["to stdout"])
    log(st, "web", ["to stderr"], stream="stderr")
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        assert rows(v)[:2] == [" to stdout", "▌to stderr"]
        assert [s.color for s in styled(v.render_line(1), "▌")] == [Color.parse("red")]


async def test_timestamps_toggle() -> None:
    st = make_store()
    t = 1_700_000_123.0
    log(st, "web", ["stamped"], t=t)
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.pause()
        v = app.view
        assert rows(v)[0] == " stamped"
        await pilot.press("t")
        await pilot.pause()
        assert rows(v)[0] == " " + time.strftime("%H:%M:%S", time.localtime(t)) + " stamped"
        await pilot.press("t")
        await pilot.pause()
        assert rows(v)[0] == " stamped"


async def test_200k_lines_in_one_batch_stay_bounded() -> None:
    st = make_store()
    log(st, "web", [f"line {i}" for i in range(200_000)])
    app = Harness(st)
    async with app.run_test(size=SIZE) as pilot:
        batch = st.take_lines()
        assert len(batch) == 20_000  # the store bounds what a slow tick receives
        app.view.lines_added(batch)
        await pilot.pause()
        v = app.view
        assert len(st.services["web"].lines) == 5000 and len(st.merged) == 20_000
        assert v.line_count == 5000 and v.virtual_size.height == 5000
        assert rows(v) == [f" line {i}" for i in range(199_972, 200_000)]
        v.show(None)
        await pilot.pause()
        assert v.line_count == 20_000
        assert rows(v)[-1] == " web line 199999"
        assert len(v._parsed) <= 4096 and len(v._strips) <= 1024


def test_snapshot_merged_search(snap_compare: Any) -> None:
    st = make_store("web", "db", "worker")
    for i in range(30):
        log(st, ("web", "db", "worker")[i % 3], [f"\x1b[32mok\x1b[0m request {i}"
                                                  if i % 4 else f"request {i} failed"],
            stream="stderr" if i % 4 == 0 else "stdout")

    async def run_before(pilot: Any) -> None:
        app = pilot.app
        app.tick()
        await pilot.pause()
        app.view.search("failed")
        await pilot.pause()

    assert snap_compare(Harness(st, service=None), terminal_size=(60, 16),
                        run_before=run_before)
