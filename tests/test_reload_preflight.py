"""The pre-flight's warm helper (third-party libraries imported, forks a child per
check) answers as a fresh interpreter does: an import-time error, the fix, a config
that does not load; and it is gone once closed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import Headless, config, copy_package, kill_marked, running

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


def test_code_other_users_can_write_is_refused(tmp_path: Path) -> None:
    from tui_supervisor.reload.code import watch_refusal

    root = copy_package(tmp_path) / "tui_supervisor"
    assert watch_refusal(root) is None
    rows = root / "tui" / "rows.py"
    rows.chmod(0o646)
    assert watch_refusal(root) == f"{rows} is writable by other users"
    rows.chmod(0o644)
    (root / "tui").chmod(0o777)  # others could rename rows.py away and put theirs
    assert watch_refusal(root) == f"{root / 'tui'} is writable by other users"
    (root / "tui").chmod(0o1777)  # sticky, as /tmp: others cannot replace what is ours
    assert watch_refusal(root) is None
    root.chmod(0o777)
    assert watch_refusal(root) == f"{root} is writable by other users"


def test_group_writable_is_refused_unless_the_group_is_private(tmp_path: Path) -> None:
    """umask 002 with user private groups (Debian, Ubuntu) makes every file group-writable
    by a group of one: that is fine; a shared group is not."""
    import grp
    import pwd

    from tui_supervisor.reload.code import watch_refusal

    root = copy_package(tmp_path) / "tui_supervisor"
    rows = root / "tui" / "rows.py"
    rows.chmod(0o664)
    me = pwd.getpwuid(os.getuid())
    group = grp.getgrgid(os.stat(rows).st_gid)
    private = group.gr_name == me.pw_name and not group.gr_mem
    assert (watch_refusal(root) is None) == private
    shared = next((g for g in grp.getgrall() if g.gr_gid != me.pw_gid), None)
    try:
        assert shared is not None
        os.chown(rows, -1, shared.gr_gid)
    except (OSError, AssertionError):
        pytest.skip("cannot give a file to another group here")
    assert watch_refusal(root) == f"{rows} is writable by group {shared.gr_name}"


def test_an_engine_does_not_follow_code_others_can_write(tmp_path: Path) -> None:
    """Said once at start-up; a save then reloads nothing."""
    import time

    pkg = copy_package(tmp_path)
    rows = pkg / "tui_supervisor" / "tui" / "rows.py"
    rows.chmod(0o666)
    e = Headless(tmp_path, config(tmp_path, watch_code=True), pkg, quiet=True)
    try:
        running(e)
        e.wait_out(f"not following the supervisor's own code: {rows} is writable by "
                   "other users")
        rows.write_text(rows.read_text() + "\n# edited\n")
        time.sleep(2)  # the thing tested: no reload follows the save
        assert "code reload" not in e.out
    finally:
        e.stop()
        kill_marked()
