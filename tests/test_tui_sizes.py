"""The layout at the three terminal size classes (80x24 small, 140x45 medium, 200x60
large): pictures of the main screen, the full detail and the full logs at each (a fixed
story, as tests/test_tui_snapshots.py), and the pane keys under Pilot: the sizes they
choose, remembered per size class across a restart, and a resize across classes.

Update the pictures with `pytest --snapshot-update` (and look at them)."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from support import T0, FixedAPI, settle, settle_picture

from tui_supervisor.tui.app import SupervisorApp

SIZES = {"small": (80, 24), "medium": (140, 45), "large": (200, 60)}


def make_app() -> SupervisorApp:
    """A dashboard on the fixed story, with the prefs of TUISUP_UI_PREFS (conftest: one
    file per test, so two apps made in one test share it, as a restart would)."""
    return SupervisorApp(FixedAPI(), mode="attached", clock=lambda: 1000.0,
                         wall_clock=lambda: T0)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def pressing(*keys: str) -> Callable[[Any], Awaitable[None]]:
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        if keys:
            await pilot.press(*keys)
            await settle_picture(pilot)
    return run_before


@pytest.mark.parametrize("cls", list(SIZES))
@pytest.mark.parametrize("view", ["main", "detail", "logs"])
def test_picture(snap_compare: Any, cls: str, view: str) -> None:
    keys = {"main": (), "detail": ("enter",), "logs": ("l",)}[view]
    assert snap_compare(make_app(), terminal_size=SIZES[cls], run_before=pressing(*keys))


def region(app: SupervisorApp, wid: str) -> Any:
    return app.screen.query_one(f"#{wid}").region


async def test_small_enter_shows_the_detail() -> None:
    """80x24: the detail pane gives way to the logs, and `enter` brings it (it stayed
    hidden: -narrow's display: none won over detail-full)."""
    app = make_app()
    async with app.run_test(size=SIZES["small"]) as pilot:
        await settle_picture(pilot)
        assert app.screen.has_class("-small")
        assert not app.detail.display and app.logs.display
        assert region(app, "logs").height >= 10  # the log pane keeps useful height
        await pilot.press("enter")
        await settle(pilot, lambda: app.detail.region.height >= 10, "the detail shown")
        assert app.detail.region.width == 80 and not app.logs.display
        assert app.detail.service == "web"
        header = app.screen.query_one("#detail-header").region
        assert header.height >= 1 and app.detail.region.contains_region(header)


async def test_medium_table_as_tall_as_its_rows() -> None:
    """Four services: the table takes its header and four rows, the rest is the panes."""
    app = make_app()
    async with app.run_test(size=SIZES["medium"]) as pilot:
        await settle_picture(pilot)
        assert app.table.row_count == 4
        table, detail, logs = (region(app, w) for w in ("services", "detail", "logs"))
        assert table.height == 5
        assert detail.y == logs.y == table.bottom and detail.x < logs.x
        assert logs.bottom == app.size.height - 1  # down to the footer


async def test_large_table_and_detail_side_by_side_logs_below() -> None:
    app = make_app()
    async with app.run_test(size=SIZES["large"]) as pilot:
        await settle_picture(pilot)
        assert app.screen.has_class("-large")
        table, detail, logs = (region(app, w) for w in ("services", "detail", "logs"))
        assert table.y == detail.y and table.right == detail.x
        assert logs.y == max(table.bottom, detail.bottom) and logs.width == 200


async def test_keys_change_sizes_and_a_restart_restores_them_per_class() -> None:
    app = make_app()
    async with app.run_test(size=SIZES["large"]) as pilot:
        await settle_picture(pilot)
        top, width = region(app, "services").height, region(app, "detail").width
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(pilot, lambda: region(app, "services").height > top, "the table grew")
        await pilot.press("greater_than_sign")
        await settle(pilot, lambda: region(app, "detail").width == width + 4, "wider")
        grown = region(app, "services").height
        await pilot.resize_terminal(*SIZES["medium"])  # another class: its own sizes
        await settle(pilot, lambda: app.screen.has_class("-medium"))
        await settle(pilot, lambda: region(app, "detail").width == 48, "medium's default")
        await pilot.press("less_than_sign")
        await settle(pilot, lambda: region(app, "detail").width == 44, "narrower")
    saved = json.loads(Path(os.environ["TUISUP_UI_PREFS"]).read_text())["layout"]
    assert saved["large"]["detail"] == width + 4 and saved["medium"]["detail"] == 44

    again = make_app()  # a restart: the same prefs file
    async with again.run_test(size=SIZES["large"]) as pilot:
        await settle_picture(pilot)
        assert region(again, "services").height == grown
        assert region(again, "detail").width == width + 4
        await pilot.resize_terminal(*SIZES["medium"])
        await settle(pilot, lambda: region(again, "detail").width == 44, "medium's own")


async def test_table_shrinks_from_what_it_shows() -> None:
    """Medium, a short table: `[` takes a row off at once (not a step of a share above
    its height); `]` gives them back and says when all rows show."""
    app = make_app()
    async with app.run_test(size=SIZES["medium"]) as pilot:
        await settle_picture(pilot)
        assert region(app, "services").height == 5
        await pilot.press("left_square_bracket")
        await settle(pilot, lambda: region(app, "services").height < 5, "shorter")
        assert app.table.row_count == 4  # the rest scrolls
        for _ in range(3):
            await pilot.press("right_square_bracket")
        await settle(pilot, lambda: region(app, "services").height == 5, "all rows again")


async def test_resize_across_classes_switches_layout() -> None:
    app = make_app()
    async with app.run_test(size=SIZES["medium"]) as pilot:
        await settle_picture(pilot)
        assert region(app, "detail").y > region(app, "services").y  # below the table
        await pilot.resize_terminal(*SIZES["large"])
        await settle(pilot, lambda: app.screen.has_class("-large")
                     and region(app, "detail").y == region(app, "services").y, "beside")
        assert not app.screen.has_class("-medium")
        await pilot.resize_terminal(*SIZES["small"])
        await settle(pilot, lambda: app.screen.has_class("-small") and not app.detail.display)
        assert app.logs.region.width == 80


async def test_palette_widens_the_detail_pane() -> None:
    from textual.command import CommandList, CommandPalette

    app = make_app()
    async with app.run_test(size=SIZES["medium"]) as pilot:
        await settle_picture(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"detail pane wider")

        def offered() -> bool:
            hits = app.screen.query_one(CommandList)
            return hits.highlighted is not None and "Detail pane: wider" in str(
                hits.get_option_at_index(hits.highlighted).prompt)

        await settle(pilot, offered, "'Detail pane: wider' offered")
        await pilot.press("enter")
        await settle(pilot, lambda: region(app, "detail").width == 52, "wider")


async def test_small_dialog_wraps_its_question() -> None:
    """80x24: the quit dialog's question (and any other) wraps inside the dialog (it was
    cut mid-word at its edge)."""
    from textual.widgets import Label

    app = make_app()
    async with app.run_test(size=SIZES["small"]) as pilot:
        await settle_picture(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: app.screen.query(".dialog > Label"), "the dialog")
        dialog = app.screen.query_one(".dialog")
        label = app.screen.query_one(".dialog > Label", Label)
        assert label.region.right <= dialog.content_region.right
        assert label.region.height >= 2  # wrapped, not cut


async def test_large_enter_gives_the_detail_the_width() -> None:
    app = make_app()
    async with app.run_test(size=SIZES["large"]) as pilot:
        await settle_picture(pilot)
        await pilot.press("enter")
        await settle(pilot, lambda: region(app, "detail").width == 200, "full width")
        table, detail = region(app, "services"), region(app, "detail")
        assert table.height == 5 and detail.y == table.bottom and not app.logs.display
        await pilot.press("escape")
        await settle(pilot, lambda: region(app, "detail").y == region(app, "services").y)
