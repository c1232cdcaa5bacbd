"""The pre-flight's warm helper (third-party libraries imported, forks a child per
check) answers as a fresh interpreter does: an import-time error, the fix, a config
that does not load; and it is gone once closed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from test_reload_code import copy_package

from tui_supervisor.reload.preflight import WarmPreflight, _fresh, preflight
from tui_supervisor.reload.safe import preflight_script

pytestmark = pytest.mark.timeout(120)


async def test_warm_checks_match_fresh_ones(tmp_path: Path, monkeypatch) -> None:
    pkg = copy_package(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(pkg))
    warm = WarmPreflight([sys.executable], str(tmp_path))
    await warm.start()
    assert warm.ready and warm.proc is not None
    pid = warm.proc.pid
    try:
        script = preflight_script(None)
        assert await warm.check(script) == (0, "")
        rows = pkg / "tui_supervisor" / "tui" / "rows.py"
        good = rows.read_text()
        rows.write_text(good + "\nraise RuntimeError('import-time failure')\n")
        rc, err = await warm.check(script)
        assert rc == 1 and "import-time failure" in err and str(rows) in err
        fresh = await _fresh([sys.executable], script, str(tmp_path))
        assert fresh is not None and fresh[0] == 1 and "import-time failure" in fresh[1]
        rows.write_text(good)  # the helper never imported the package: it sees the fix
        assert await warm.check(script) == (0, "")
        cfg = tmp_path / "c.yaml"
        cfg.write_text("services:\n  a:\n    command: [x]\n    start_time: soon\n")
        rc, err = await warm.check(preflight_script(str(cfg)))
        assert rc == 1 and "the config does not load" in err and "c.yaml:4" in err
    finally:
        await warm.close()
    assert warm.proc is None and not os.path.exists(f"/proc/{pid}")


async def test_a_syntax_error_anywhere_is_named_by_file_and_line(tmp_path: Path,
                                                              monkeypatch) -> None:
    """Even in a module nothing imports at start-up (the import check cannot see it)."""
    import tui_supervisor.reload.preflight as pf

    pkg = copy_package(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(pkg))
    odd = pkg / "tui_supervisor" / "demo" / "leaky.py"
    odd.write_text(odd.read_text() + "\ndef broken(:\n")
    monkeypatch.setattr(pf.compile_errors, "__defaults__", (pkg / "tui_supervisor",))
    err = await preflight(None, [sys.executable], str(tmp_path))
    assert err is not None and f"{odd}:" in err
