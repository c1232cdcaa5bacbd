"""The dashboard's remembered choices (tui/prefs.py): a real file, atomic writes, and a
bad or unwritable file never stops the UI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_supervisor.tui.prefs import Prefs, prefs_path, size_class


@pytest.mark.parametrize(("w", "h", "want"), [
    (80, 24, "small"), (99, 45, "small"), (140, 29, "small"), (140, 45, "medium"),
    (179, 60, "medium"), (200, 49, "medium"), (200, 60, "large"), (180, 50, "large"),
])
def test_size_classes(w: int, h: int, want: str) -> None:
    assert size_class(w, h) == want


def test_path_follows_xdg_and_the_override(tmp_path: Path) -> None:
    assert prefs_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/tui-supervisor/ui.json")
    assert prefs_path({"HOME": "/h"}) == Path("/h/.config/tui-supervisor/ui.json")
    assert prefs_path({"TUISUP_UI_PREFS": "/p.json", "HOME": "/h"}) == Path("/p.json")


def test_set_writes_at_once_and_a_new_reader_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "ui.json"
    p = Prefs(path)
    p.set("theme", "nord")
    p.set("layout", {"small": {"table": 8}})
    assert json.loads(path.read_text()) == {"theme": "nord", "layout": {"small": {"table": 8}}}
    assert Prefs(path).get("theme") == "nord"
    assert [f.name for f in path.parent.iterdir()] == ["ui.json"]  # no temp file left


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_bad_file_reads_as_empty_and_says_why(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ui.json"
    path.write_text(text)
    p = Prefs(path)
    assert p.data == {} and p.problem and str(path) in p.problem
    assert path.read_text() == text  # not rewritten by reading


def test_an_unwritable_place_is_said_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # (its "folder" cannot be made, even by root)
    p = Prefs(blocker / "ui.json")
    p.set("theme", "nord")
    assert p.get("theme") == "nord" and p.problem and "not saved" in p.problem
    assert blocker.read_text() == ""


async def test_the_dashboard_says_a_bad_file_once_and_starts(tmp_path: Path) -> None:
    from support import FixedAPI

    from tui_supervisor.tui.app import SupervisorApp

    path = tmp_path / "ui.json"
    path.write_text("{not json")
    app = SupervisorApp(FixedAPI(), mode="attached", prefs=Prefs(path))
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause(0.3)
        said = [n.message for n in app._notifications]
        assert len([m for m in said if "UI preferences" in m and str(path) in m]) == 1, said
        assert app.table.row_count > 0
