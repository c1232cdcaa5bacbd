"""Pictures of the main views (pytest-textual-snapshot) on a fixed engine state: a fake
*state* behind the SupervisorAPI so the picture is the same on every run (the behaviour is
tested against real engines elsewhere). Update with `pytest --snapshot-update`."""

from __future__ import annotations

from typing import Any

import pytest
from support import HEALTH_SNAPSHOT, T0, FixedAPI, settle_picture

from tui_supervisor.tui.app import SupervisorApp


def make_app(story: dict[str, Any] | None = None) -> SupervisorApp:
    return SupervisorApp(FixedAPI(story), mode="attached", clock=lambda: 1000.0,
                         wall_clock=lambda: T0)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def test_dashboard(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=settle_picture)


def test_dashboard_small_terminal(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle_picture)


def test_worker_detail(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        await pilot.press("j", "enter")
        await settle_picture(pilot)

    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=run_before)


def test_detail_charts(snap_compare: Any) -> None:
    """The detail pane full width at 140x45: CPU, memory, the readiness probe's duration
    and readiness over 10 minutes, the crash (✖) and respawn (↻) on the time line."""
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        await pilot.press("j", "enter")
        await settle_picture(pilot)

    assert snap_compare(make_app(), terminal_size=(140, 45), run_before=run_before)


def test_merged_logs_with_search(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        await pilot.press("a", "l", "slash", *"request", "enter")
        await settle_picture(pilot)

    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=run_before)


def test_help(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        await pilot.press("question_mark")
        await settle_picture(pilot)

    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=run_before)


def test_health_dependencies_replicas(snap_compare: Any) -> None:
    """Issue 14's story: HEALTH, a waiting worker, a replica group; the cursor on the
    unready api (its probes and output in the detail pane)."""
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        await pilot.press("j", "j")
        await settle_picture(pilot)

    assert snap_compare(make_app(HEALTH_SNAPSHOT), terminal_size=(140, 45),
                        run_before=run_before)


def test_waiting_worker_detail(snap_compare: Any) -> None:
    """The waiting worker's detail, full width: its reason, health, dependency tree."""
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        await pilot.press("j", "j", "j", "enter")
        await settle_picture(pilot)

    assert snap_compare(make_app(HEALTH_SNAPSHOT), terminal_size=(140, 45),
                        run_before=run_before)
