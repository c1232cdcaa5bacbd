"""Issue 14 in the dashboard: the HEALTH column, the `waiting` state, the detail pane's
health and dependencies, replica groups (fold, scale) — pure tables first, then the app
against the fixed story (tests/support/fixed_api.py HEALTH_SNAPSHOT)."""

from __future__ import annotations

from typing import Any

import pytest
from support import HEALTH_SNAPSHOT, SNAPSHOT, T0

from tui_supervisor.formatting import ANSI, HEALTH_COLOURS, STATE_COLOURS, health_colour
from tui_supervisor.tui.rows import cells, health_text, state_text
from tui_supervisor.tui.store import Store


def view(name: str, story: dict[str, Any] = HEALTH_SNAPSHOT) -> dict[str, Any]:
    return next(dict(s) for s in story["services"] if s["name"] == name)


# -- the HEALTH column and the waiting state ---------------------------------------------
@pytest.mark.parametrize(("v", "text"), [
    ({"health": "ready"}, "ready"),
    ({"health": "unready"}, "unready"),
    ({"health": "starting"}, "starting"),
    ({"health": None}, "-"),  # no probe, or no process
    ({}, ""),  # an older engine: no health at all, an empty column
])
def test_health_cell(v: dict[str, Any], text: str) -> None:
    assert health_text(v) == text


def test_health_palette_is_in_the_one_palette() -> None:
    assert health_colour("ready") == "green" and health_colour("unready")
    assert health_colour(None) == health_colour("-") == ""
    # every colour can be drawn on a plain terminal too (the headless console)
    assert set(HEALTH_COLOURS.values()) | set(STATE_COLOURS.values()) <= set(ANSI)
    assert STATE_COLOURS["waiting"] not in (STATE_COLOURS["running"], STATE_COLOURS["stopped"])


@pytest.mark.parametrize(("reason", "text"), [
    ("waiting for db (ready)", "waiting for db (ready)"),
    ("waiting for db (ready), migrate (completed_successfully)",
     "waiting for db (ready), migrate (completed_successfully)"),
    ("dependency db", "waiting: dependency db"),
    ("", "waiting"),
])
def test_waiting_state_says_for_what(reason: str, text: str) -> None:
    assert state_text({"state": "waiting", "reason": reason}) == text


def test_story_cells() -> None:
    c = {s["name"]: cells(s, now=0.0) for s in HEALTH_SNAPSHOT["services"]}
    assert [c[n]["health"] for n in ("db", "migrate", "api", "worker", "web-0")] == [
        "ready", "-", "unready", "-", "ready"]
    assert c["worker"]["state"] == "… waiting for migrate (completed_successfully)"
    # the old story (an engine before issue 14): the column is there, empty
    assert {cells(s, now=0.0)["health"] for s in SNAPSHOT["services"]} == {""}


def test_health_events_update_the_row_at_once() -> None:
    st = Store()
    st.load_snapshot(HEALTH_SNAPSHOT)
    st.take_dirty()
    st.apply({"kind": "health", "t": T0, "service": "api", "health": "ready",
              "probe": "readiness", "output": "200 OK"})
    assert st.take_dirty() == {"api"}
    assert health_text(st.services["api"].view) == "ready"
    assert st.services["api"].view["health_output"] == "200 OK"


# -- the detail pane's sections (pure) ---------------------------------------------------
def plain(r: Any, width: int = 46) -> str:
    import io

    from rich.console import Console

    c = Console(width=width, no_color=True, record=True, file=io.StringIO())
    c.print(r)
    return "\n".join(line.rstrip() for line in c.export_text().splitlines())


def test_health_section_lists_probes_and_the_last_output_wrapped() -> None:
    from tui_supervisor.tui.widgets.health import OUTPUT_LINES, health

    text = plain(health(view("api"), 40), 40)
    lines = text.splitlines()
    assert lines[0] == "Health  unready"
    assert lines[1].split() == ["readiness", "http", "failing", "4", "failures", "31ms"]
    assert lines[2].split() == ["liveness", "exec", "passing", "210ms"]
    out = [ln for ln in lines if ln.startswith("│ ")]
    assert len(out) == OUTPUT_LINES and out[0].startswith("│ GET http://127.0.0.1:8080")
    assert out[-1].endswith("…") and all(len(ln) <= 40 for ln in lines)  # more: cut


@pytest.mark.parametrize(("v", "text"), [
    ({"name": "x", "state": "running"}, ""),  # an older engine: no section at all
    ({"name": "x", "health": None, "probes": {}}, "Health  -  no probe"),
])
def test_health_section_without_probes(v: dict[str, Any], text: str) -> None:
    from tui_supervisor.tui.widgets.health import health

    assert plain(health(v, 46)).strip() == text


def test_dependency_tree_both_ways() -> None:
    from tui_supervisor.tui.widgets.health import dependencies

    views = HEALTH_SNAPSHOT["services"]
    assert plain(dependencies(view("worker"), views)).splitlines() == [
        "Dependencies", "worker", "└── waits for", "    ├── ✓ db (ready)",
        "    └── ✗ migrate (completed_successfully)"]
    assert plain(dependencies(view("db"), views)).splitlines() == [
        "Dependencies", "db", "└── needed by", "    ├── ✓ migrate (ready)",
        "    ├── ✓ api (ready)", "    └── ✓ worker (ready)"]
    # a dependency on a replica group is one on each replica
    on_group = [*views, {"name": "lb", "depends_on": [{"name": "web", "condition":
                                                        "ready", "met": False}]}]
    assert "✗ lb (ready)" in plain(dependencies(view("web-1"), on_group))
    # an older engine (no depends_on anywhere): no section
    assert plain(dependencies(view("worker", SNAPSHOT), SNAPSHOT["services"])) == ""


# -- replica groups ----------------------------------------------------------------------
def story_views() -> dict[str, dict[str, Any]]:
    return {s["name"]: dict(s) for s in HEALTH_SNAPSHOT["services"]}


def test_arrange_puts_replicas_under_their_group_row() -> None:
    from tui_supervisor.tui.rows import arrange

    views = story_views()
    names = list(views)
    assert arrange(names, views, set()) == [
        "db", "migrate", "api", "worker", "group:web", "web-0", "web-1", "web-2"]
    assert arrange(names, views, {"web"}) == ["db", "migrate", "api", "worker", "group:web"]
    # sorted or filtered apart, the replicas still follow their group row
    assert arrange(["web-2", "db", "web-0"], views, set()) == [
        "group:web", "web-2", "web-0", "db"]
    # an older engine (no group key): one row per service, as before
    old = {s["name"]: s for s in SNAPSHOT["services"]}
    assert arrange(list(old), old, set()) == list(old)


@pytest.mark.parametrize(("states", "healths", "state", "health"), [
    (["running"] * 3, ["ready"] * 3, "● 3/3 running", "3/3 ready"),
    (["running", "backoff", "running"], ["ready", None, "unready"], "◒ 2/3 running",
     "1/3 ready"),
    (["stopped"] * 2, [None, None], "■ 0/2 running", "0/2 ready"),
])
def test_group_row_aggregates(states: list[str], healths: list[str | None], state: str,
                              health: str) -> None:
    from tui_supervisor.tui.rows import group_cells

    reps = [{"name": f"web-{i}", "state": s, "health": h, "restarts": i, "failures": 1}
            for i, (s, h) in enumerate(zip(states, healths, strict=True))]
    c = group_cells("web", reps, folded=False)
    assert (c["name"], c["state"], c["health"]) == ("▾ web", state, health)
    assert c["restarts"] == str(sum(range(len(states)))) and c["failures"] == str(len(states))
    assert c["pid"] == c["cpu"] == ""
    assert group_cells("web", reps, folded=True)["name"] == "▸ web"
    assert group_cells("web", [{"state": "running"}], False)["health"] == ""  # no health key


def story_app(api: Any = None) -> Any:
    from support import FixedAPI

    from tui_supervisor.tui.app import SupervisorApp

    return SupervisorApp(api or FixedAPI(HEALTH_SNAPSHOT), mode="attached",
                         clock=lambda: 1000.0, wall_clock=lambda: T0)


def row_keys(app: Any) -> list[str]:
    return [str(r.key.value) for r in app.table.ordered_rows]


async def test_fold_and_unfold_keep_the_cursor_on_its_service() -> None:
    from support import settle_picture

    app = story_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle_picture(pilot)
        assert row_keys(app)[4:] == ["group:web", "web-0", "web-1", "web-2"]
        app.table.select("api")
        await pilot.press("z")  # not a group: nothing folds
        await pilot.pause()
        assert len(row_keys(app)) == 8 and app.table.selected == "api"
        app.table.select("web-1")
        await pilot.press("z")  # on a replica: folds its group, the cursor onto the group
        await pilot.pause()
        assert row_keys(app)[4:] == ["group:web"] and app.table.folded == {"web"}
        assert app.table.selected_key == "group:web"
        assert app.table.get_cell("group:web", "name").plain == "▸ web"
        app.table.select("db")
        await pilot.pause(0.3)  # snapshots come and go: the fold stays, the cursor too
        app.store.order_changed = True
        app._tick()
        assert row_keys(app)[4:] == ["group:web"] and app.table.selected == "db"
        app.table.select("group:web")
        await pilot.press("z")
        await pilot.pause()
        assert row_keys(app)[4:] == ["group:web", "web-0", "web-1", "web-2"]
        assert app.table.selected_key == "group:web" and app.table.folded == set()
        assert app.table.selected_names() == ["web-0", "web-1", "web-2"]


# -- scaling -----------------------------------------------------------------------------
@pytest.mark.parametrize(("r", "text"), [
    ({"ok": True, "group": "web", "replicas": 4, "started": ["web-3"], "stopped": []},
     "web: 4 replicas (started web-3)"),
    ({"ok": True, "group": "web", "replicas": 1, "started": [], "stopped": ["web-2", "web-1"]},
     "web: 1 replica (stopped web-2, web-1)"),
    ({"ok": True, "group": "web", "replicas": 3, "started": [], "stopped": []},
     "web: 3 replicas (no change)"),
])
def test_scale_summary(r: dict[str, Any], text: str) -> None:
    from tui_supervisor.tui.service_actions import scale_summary

    assert scale_summary(r) == text


@pytest.mark.parametrize(("text", "n"), [("5", 5), (" 0 ", 0), ("-1", None), ("x", None),
                                         ("", None), (None, None)])
def test_scale_count(text: str | None, n: int | None) -> None:
    from tui_supervisor.tui.service_actions import scale_count

    assert scale_count(text) == n


def notices(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_scale_keys_call_the_api_with_the_group_and_the_count() -> None:
    from support import FixedAPI, settle_picture

    api = FixedAPI(HEALTH_SNAPSHOT)
    app = story_app(api)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle_picture(pilot)
        app.table.select("web-1")
        await pilot.press("plus")  # on a replica: its group, one more
        await pilot.pause()
        app.table.select("group:web")
        await pilot.press("minus")  # on the group row: one fewer
        await pilot.pause()
        await pilot.press("equals_sign")  # the prompt: N
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", "5", "enter")
        await pilot.pause(0.2)
        assert api.calls == [("scale", ("web", 4)), ("scale", ("web", 2)),
                             ("scale", ("web", 5))]
        assert "scaled web: 4 replicas (started web-3)" in notices(app)
        assert "scaled web: 2 replicas (stopped web-2)" in notices(app)
        app.table.select("api")  # not a group: no call, a word why
        await pilot.press("plus")
        await pilot.pause()
        assert len(api.calls) == 3 and any("not a replica group" in n for n in notices(app))


async def test_scale_on_an_engine_without_it_says_so() -> None:
    from support import FixedAPI, settle_picture

    from tui_supervisor.control.errors import ControlError

    class Older(FixedAPI):  # an engine from before replicas: the reply a real one gives
        async def scale(self, name: str, n: int) -> Any:
            raise ControlError("unknown_verb", "unknown verb: scale")

    app = story_app(Older(HEALTH_SNAPSHOT))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle_picture(pilot)
        app.table.select("web-0")
        await pilot.press("plus")
        await pilot.pause()
        assert any("cannot scale" in n for n in notices(app))


# -- stop asks before taking dependents down ---------------------------------------------
def test_stop_affects_the_dependents_that_are_up() -> None:
    from tui_supervisor.tui.widgets.health import stop_affects

    views = list(story_views().values())
    assert stop_affects(["db"], views) == ["migrate", "api"]  # the worker waits already
    assert stop_affects(["api"], views) == ["web-0", "web-1", "web-2"]
    assert stop_affects(["web-0", "web-1", "web-2"], views) == []
    lb = {"name": "lb", "state": "running", "depends_on": [{"name": "web"}]}
    assert stop_affects(["web-1"], [*views, lb]) == ["lb"]  # on the group: on each
    assert stop_affects(["db"], SNAPSHOT["services"]) == []  # an older engine: no asking


async def test_stop_asks_before_stopping_dependents() -> None:
    from support import FixedAPI, settle_picture

    from tui_supervisor.tui.screens.dialogs import ConfirmScreen

    class Recording(FixedAPI):
        async def stop(self, names: list[str]) -> Any:
            self.calls.append(("stop", names))
            return await super().stop(names)

    api = Recording(HEALTH_SNAPSHOT)
    app = story_app(api)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle_picture(pilot)
        app.table.select("db")
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and api.calls == []
        assert "migrate, api depend on it" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert api.calls == []
        await pilot.press("s", "y")
        await pilot.pause()
        assert api.calls == [("stop", ["db"])]
        app.table.select("worker")  # nothing depends on it: no question
        await pilot.press("s")
        await pilot.pause()
        assert api.calls[-1] == ("stop", ["worker"])


# -- a group row in the detail pane ------------------------------------------------------
def test_group_summary() -> None:
    from tui_supervisor.tui.widgets.health import group_summary

    views = list(story_views().values())
    lb = {"name": "lb", "state": "running",
          "depends_on": [{"name": "web", "condition": "ready", "met": True}]}
    lines = plain(group_summary("web", [*views, lb])).splitlines()
    assert lines[0] == "web  replica group: 3/3 running, 3/3 ready"
    assert [ln.split() for ln in lines[1:4]] == [
        [f"web-{i}", "running", "ready", str(4310 + i), "1h02m"] for i in range(3)]
    assert lines[-2:] == ["needed by", "└── ✓ lb (ready)"]


async def test_a_group_row_shows_the_group_and_its_first_replicas_logs() -> None:
    from support import settle_picture

    app = story_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle_picture(pilot)
        app.table.select("group:web")
        await pilot.pause(0.3)
        assert app.detail.service == "group:web" and app.logs.service == "web-0"
        header = app.detail.query_one("#detail-header")
        assert "replica group: 3/3 running" in str(header.render().renderables[0])
        app.table.select("api")
        await pilot.pause(0.3)
        assert app.detail.service == "api" and app.logs.service == "api"
