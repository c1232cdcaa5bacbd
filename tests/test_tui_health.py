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
    assert c["worker"]["state"] == "waiting for migrate (completed_successfully)"
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
