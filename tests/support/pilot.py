"""Driving the dashboard with Textual's Pilot: the terminal size the tests use, what the
table shows, and letting the app tick until something holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .waiting import wait_for

if TYPE_CHECKING:
    from tui_supervisor.tui.app import SupervisorApp

SIZE = (140, 45)


def rows(app: SupervisorApp) -> dict[str, list[str]]:
    """What the table shows: service -> cell texts, in display order."""
    t = app.table
    return {str(r.key.value): [str(c) for c in t.get_row(r.key)] for r in t.ordered_rows}


async def settle(pilot: Any, pred: Callable[[], Any], what: str = "") -> Any:
    """Let the app tick until `pred` holds (generous timeout)."""
    async def ticked() -> Any:
        await pilot.pause(0.05)
        return pred()

    return await wait_for(ticked, 15, what or str(pred), interval=0.05)
