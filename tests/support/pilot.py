"""Driving the dashboard with Textual's Pilot: the terminal size the tests use, what the
table shows, and letting the app tick until something holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .waiting import wait_for

if TYPE_CHECKING:
    from tui_supervisor.tui.app import SupervisorApp

SIZE = (140, 45)


def rows(app: SupervisorApp) -> dict[str, dict[str, str]]:
    """What the table shows: service -> {column key: cell text} of the columns shown,
    rows in display order."""
    t = app.table
    keys = [str(k.value) for k in t.columns]
    return {str(r.key.value): dict(zip(keys, map(str, t.get_row(r.key)), strict=True))
            for r in t.ordered_rows}


async def settle(pilot: Any, pred: Callable[[], Any], what: str = "") -> Any:
    """Let the app tick until `pred` holds (generous timeout)."""
    async def ticked() -> Any:
        await pilot.pause(0.05)
        return pred()

    return await wait_for(ticked, 15, what or str(pred), interval=0.05)
