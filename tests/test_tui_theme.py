"""Themes (issue 15): Textual's picker in our palette, the choice kept in the UI
preferences file and restored by the next dashboard; a bad saved name is said once and
ignored. The UI behind a fixed API: the engine plays no part in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import SIZE, T0, FixedAPI, settle

from tui_supervisor.tui.app import SupervisorApp
from tui_supervisor.tui.prefs import Prefs
from tui_supervisor.tui.theme import saved_theme

THEMES = {"textual-dark", "textual-light", "nord"}


@pytest.mark.parametrize(("saved", "want"), [
    (None, (None, None)),
    ("nord", ("nord", None)),
    ("no-such-theme", (None, "UI preferences: unknown theme 'no-such-theme' ignored")),
    (42, (None, "UI preferences: unknown theme 42 ignored")),
    ("", (None, "UI preferences: unknown theme '' ignored")),
])
def test_saved_theme(saved: Any, want: tuple[str | None, str | None]) -> None:
    assert saved_theme(saved, THEMES) == want


def make_app(path: Path) -> SupervisorApp:
    return SupervisorApp(FixedAPI(), mode="attached", clock=lambda: 1000.0,
                         wall_clock=lambda: T0, prefs=Prefs(path))


async def pick(pilot: Any, app: SupervisorApp, query: str, label: str) -> None:
    """Type `query` into the open palette; enter once `label` is the highlighted hit."""
    from textual.command import CommandList

    await pilot.press(*query)

    def offered() -> bool:
        hits = app.screen.query_one(CommandList)
        return hits.highlighted is not None and str(
            hits.get_option_at_index(hits.highlighted).prompt).startswith(label)

    await settle(pilot, offered, f"{label!r} offered for {query!r}")
    await pilot.press("enter")


async def test_the_theme_chosen_in_the_palette_is_kept(tmp_path: Path) -> None:
    from textual.command import CommandPalette

    path = tmp_path / "ui.json"
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.store.services, "the first snapshot")
        assert app.theme != "textual-light" and not path.exists()  # nothing written yet
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pick(pilot, app, "theme", "Theme")  # Textual's own command, in ours
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette) and
                     "theme" in str(app.screen.query_one("Input").placeholder).lower(),
                     "the theme picker")
        await pick(pilot, app, "textual-light", "textual-light")
        await settle(pilot, lambda: app.theme == "textual-light", "the theme applied")
    assert json.loads(path.read_text())["theme"] == "textual-light"

    again = make_app(path)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: again.store.services, "the first snapshot")
        assert again.theme == "textual-light"
        assert not again._notifications  # nothing to say


async def test_an_unknown_saved_theme_is_ignored_and_said_once(tmp_path: Path) -> None:
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"theme": "no-such-theme", "layout": {"small": {}}}))
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.store.services, "the first snapshot")
        from textual import constants

        assert app.theme == constants.DEFAULT_THEME
        said = [n.message for n in app._notifications]
        assert said == ["UI preferences: unknown theme 'no-such-theme' ignored"]
        app.theme = "nord"  # a later choice replaces it; the other keys stay
        await settle(pilot, lambda: json.loads(path.read_text())["theme"] == "nord")
    assert json.loads(path.read_text()) == {"theme": "nord", "layout": {"small": {}}}
