"""The dashboard driven by keys (Textual Pilot, headless) against a real engine with real
processes — in the engine's process and attached over a real control socket."""

from __future__ import annotations

from pathlib import Path

from conftest import alive, child, spec, wait_for
from support import SIZE, rows, settle

from tui_supervisor.tui.screens.dialogs import ConfirmScreen, QuitScreen, SignalScreen


async def test_table_follows_the_engine(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path),
                              spec("b", child("crash", "3"), tmp_path, restart="never"))
    async with app.run_test(size=(200, 45)) as pilot:  # wide: every column shows
        # the state comes with the event, counters with the next snapshot (≤ 1 s)
        await settle(pilot, lambda: rows(app).get("b", {}).get("state") == "○ exited" and
                     rows(app)["b"]["failures"] == "1", "b exited")
        r = rows(app)
        assert list(r) == ["a", "b"]
        assert r["a"]["state"] == "● running" and r["a"]["pid"] == str(sup.services["a"].pid)
        assert r["b"]["failures"] == "1" and r["b"]["last"] == "exit code 3"
        header = str(app.query_one("#header").render())
        assert "1 running" in header and "1 exited" in header


async def test_the_panes_switch_with_the_cursor_not_a_frame_later(make_app, tmp_path: Path
                                                                    ) -> None:
    """The detail and log panes follow the cursor as it moves (the table calls the app),
    not when DataTable's RowHighlighted message reaches the app: that comes after the
    frame that moved the cursor, and the panes a layout pass later (issue 15)."""
    _, app = await make_app(spec("a", child("sleeper"), tmp_path),
                              spec("b", child("sleeper"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: list(rows(app)) == ["a", "b"] and
                     app.detail.service == "a", "a selected")
        app.table.action_cursor_down()  # what `j` runs; no message is handled in between
        assert app.detail.service == "b" and str(app.logs.border_title) == "logs · b"
        await pilot.press("o")  # sorting moves rows (the cursor with its service): no switch
        await settle(pilot, lambda: app.table.sort_key is not None, "sorted")
        assert app.table.selected == app.detail.service == "b"


async def test_young_collections_are_rarer_only_while_the_app_runs(make_app,
                                                                   tmp_path: Path) -> None:
    """The app raises the young generation's threshold (full collections of its ~200k
    objects stalled keys: app.GC_YOUNG) and gives the process its own back on exit."""
    import gc

    from tui_supervisor.tui.app import GC_YOUNG

    was = gc.get_threshold()
    assert was[0] != GC_YOUNG
    _, app = await make_app(spec("a", child("sleeper"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: "a" in rows(app), "a shown")
        assert gc.get_threshold() == (GC_YOUNG, *was[1:])
    assert gc.get_threshold() == was


async def test_restart_stop_start_keys(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path))
    svc = sup.services["a"]
    async with app.run_test(size=SIZE) as pilot:
        pid = await settle(pilot, lambda: rows(app).get("a") and svc.pid)
        await pilot.press("r")
        await settle(pilot, lambda: svc.pid not in (None, pid) and
                     rows(app)["a"]["pid"] == str(svc.pid), "restarted")
        await pilot.press("s")
        await settle(pilot, lambda: rows(app)["a"]["state"] == "■ stopped", "stopped")
        assert svc.pid is None
        await pilot.press("S")
        await settle(pilot, lambda: rows(app)["a"]["state"] == "● running", "started")
        assert svc.restarts == 0 and svc.failures == 0  # operator actions, not failures


async def test_signal_picker_sends_the_chosen_signal(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path))
    svc = sup.services["a"]
    async with app.run_test(size=SIZE) as pilot:
        pid = await settle(pilot, lambda: rows(app).get("a") and svc.pid)
        await pilot.press("K")
        await settle(pilot, lambda: isinstance(app.screen, SignalScreen))
        await pilot.press("enter")  # the first: TERM
        await settle(pilot, lambda: svc.pid not in (None, pid) and svc.state.value ==
                     "running", "respawned after TERM")
        assert svc.last_exit and svc.last_exit["text"] == "killed by SIGTERM"
        assert svc.failures == 0  # an operator's signal is not a failure


async def test_confirm_before_acting_on_all(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path),
                              spec("b", child("sleeper"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        before = await settle(pilot, lambda: all(s.pid for s in sup.services.values()) and
                              {n: s.pid for n, s in sup.services.items()})
        app.action_stop_all()
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause(0.3)  # the thing tested: nothing is stopped meanwhile
        assert {n: s.pid for n, s in sup.services.items()} == before
        app.action_restart_all()
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await settle(pilot, lambda: all(s.pid not in (None, before[n]) for n, s in
                                        sup.services.items()), "all restarted")


async def test_filter_and_sort_keep_the_cursor(make_app, tmp_path: Path) -> None:
    _, app = await make_app(*(spec(n, child("sleeper"), tmp_path) for n in ("c", "a", "b")))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 3)
        app.table.select("c")
        await pilot.press("o")  # sort by name
        await settle(pilot, lambda: list(rows(app)) == ["a", "b", "c"])
        assert app.table.selected == "c"
        await pilot.press("o")  # by state: all running, then by name
        await pilot.press("f")
        await pilot.press("b", "enter")
        await settle(pilot, lambda: list(rows(app)) == ["b"], "filtered")
        await pilot.press("f")
        for _ in range(3):
            await pilot.press("backspace")
        await pilot.press("enter")
        await settle(pilot, lambda: len(rows(app)) == 3, "filter cleared")


async def test_reload_key_shows_errors_then_applies(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path))
    sup.config.path.write_text("services:\n  a: {command: [x], restart: sometimes}\n")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: rows(app).get("a"))
        await pilot.press("R")
        await settle(pilot, lambda: "config error" in str(app.query_one("#header").render()),
                     "config error shown in the header")
        assert "restart" in str(app.query_one("#header").render())
        assert "✖" not in app._widgets[3]._text.plain  # said once: not as the last notice too
        sup.config.path.write_text(
            f"services:\n  a: {{command: {list(child('sleeper'))}, start_time: 0}}\n"
            f"  z: {{command: {list(child('sleeper'))}, start_time: 0}}\n")
        await pilot.press("R")
        await settle(pilot, lambda: "z" in rows(app) and app.config_error is None,
                     "new service in the table")


async def test_quit_dialog(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: rows(app).get("a"))
        await pilot.press("q")  # hosted or attached, the same choice
        await settle(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, QuitScreen))
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("l")  # an attached client just goes: the engine keeps running
        await settle(pilot, lambda: app.return_value == (
            "detach" if app.mode == "attached" else "leave"))
    assert sup.services["a"].state.value == "running"  # the app never stops services itself


async def test_views_and_help(make_app, tmp_path: Path) -> None:
    _, app = await make_app(spec("a", child("counter", "5"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: rows(app).get("a"))
        await pilot.press("l")
        assert app.screen.has_class("logs-full")
        assert not app.query_one("#services").display
        await pilot.press("l")
        assert not app.screen.has_class("logs-full")
        await pilot.press("a")
        assert app.merged_logs
        app.table.focus()
        await pilot.press("enter")  # on the table: the detail pane takes the width
        await settle(pilot, lambda: app.screen.has_class("detail-full"))
        await pilot.press("enter")
        await settle(pilot, lambda: not app.screen.has_class("detail-full"))
        await pilot.press("enter")
        await pilot.press("question_mark")
        from tui_supervisor.tui.screens.help import HelpScreen

        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        from textual.command import CommandPalette

        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))


async def test_history_is_backfilled_once(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("counter", "30"), tmp_path, restart="never"))
    await wait_for(lambda: sup.services["a"].state.value == "completed")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(app.store.services.get("a", None).lines
                                        if "a" in app.store.services else []) >= 30)
        await pilot.pause(0.3)  # the thing tested: no line comes twice meanwhile
        shown = [x.text for x in app.store.services["a"].lines]
        truth = [t for _, _, _, t in sup.services["a"].ring.tail(None)]
        assert shown == truth and len(shown) == len(set(shown))


async def test_search_keys(make_app, tmp_path: Path) -> None:
    _, app = await make_app(spec("a", child("counter", "40"), tmp_path, restart="never"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(app.store.services["a"].lines) == 40
                     if "a" in app.store.services else False)
        await pilot.press("slash", *"line 0000003", "enter")  # lines 30..39
        await settle(pilot, lambda: app.logs.match_count == 10, "10 matches")
        first = app.logs.current_match
        await pilot.press("N")
        await settle(pilot, lambda: app.logs.current_match != first, "moved to another match")
        await pilot.press("n")
        await settle(pilot, lambda: app.logs.current_match == first, "and back")


async def test_command_palette_runs_actions(make_app, tmp_path: Path) -> None:
    from textual.command import CommandList, CommandPalette

    sup, app = await make_app(spec("a", child("sleeper"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        pid = await settle(pilot, lambda: rows(app).get("a") and sup.services["a"].pid)
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"stop all services")

        def offered() -> bool:  # the search's best hit, highlighted: what enter runs
            hits = app.screen.query_one(CommandList)
            return hits.highlighted is not None and "Stop all services" in str(
                hits.get_option_at_index(hits.highlighted).prompt)

        await settle(pilot, offered, "'Stop all services' offered")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asks first")
        await pilot.press("y")
        await settle(pilot, lambda: sup.services["a"].pid is None and
                     rows(app)["a"]["state"] == "■ stopped", "stopped from the palette")
        assert not alive(pid)


async def test_log_keys_work_with_the_table_focused(make_app, tmp_path: Path) -> None:
    """end / home / t / n act on the log pane while the table has the focus (no Tab Tab),
    and escape leaves the full-screen logs."""
    _, app = await make_app(spec("a", child("counter", "80"), tmp_path, restart="never"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(app.store.services["a"].lines) == 80
                     if "a" in app.store.services else False)
        await settle(pilot, lambda: app.logs.line_count == 80, "the pane shows them")
        assert app.focused is app.table
        await pilot.press("home")  # the oldest line: following pauses
        await settle(pilot, lambda: not app.logs.following and app.logs.scroll_y == 0)
        assert "paused" in str(app.logs.border_subtitle)
        await pilot.press("end")  # what the pane says to press
        await settle(pilot, lambda: app.logs.following, "following again")
        assert app.focused is app.table and app.table.selected == "a"
        assert not app.logs.timestamps
        await pilot.press("t")
        await settle(pilot, lambda: app.logs.timestamps, "time stamps on")
        await pilot.press("slash", *"line 0000003", "enter")
        await settle(pilot, lambda: app.logs.match_count == 10, "10 matches")
        app.table.focus()
        first = app.logs.current_match
        await pilot.press("n")
        await settle(pilot, lambda: app.logs.current_match != first, "next match")
        await pilot.press("l")
        assert app.screen.has_class("logs-full")
        await pilot.press("escape")
        await settle(pilot, lambda: not app.screen.has_class("logs-full"), "escape leaves")
        await pilot.press("enter")
        await settle(pilot, lambda: app.screen.has_class("detail-full"))
        await pilot.press("escape")
        await settle(pilot, lambda: not app.screen.has_class("detail-full"), "escape leaves")


async def test_command_palette_opens_on_the_apps_commands(make_app, tmp_path: Path) -> None:
    from textual.command import CommandList, CommandPalette

    _, app = await make_app(spec("a", child("sleeper"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: rows(app).get("a"))
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))

        def shown() -> list[str]:
            hits = app.screen.query_one(CommandList)
            return [str(hits.get_option_at_index(i).prompt)
                    for i in range(hits.option_count)]

        await settle(pilot, lambda: len(shown()) > 20, "the palette lists commands")
        first = shown()[:5]
        assert first[0].startswith("Restart the selected service"), first
        assert "Restart all services…" in " ".join(shown()[:8])
        assert not any("action:" in s for s in shown())
        assert "key r" in first[0]  # the key, in the help line
        assert any(s.startswith("Theme") for s in shown()[19:])  # Textual's own, after
