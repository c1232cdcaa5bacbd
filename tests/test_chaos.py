"""The chaos suite's quick forms (bench/chaos_scenarios.py; the full forms: `python
bench/chaos.py --full`, figures in docs/RELIABILITY.md). Each runs a real headless engine
through one scenario of issue 12 and fails with the checks that did not hold."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from support import ROOT

sys.path.append(str(ROOT / "bench"))  # as when bench/chaos.py runs: its siblings import
scenarios = importlib.import_module("chaos_scenarios")
report = importlib.import_module("chaos_report")

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_quick_form(name: str, tmp_path: Path) -> None:
    r = scenarios.run(name, tmp_path / name, full=False)
    if r.skipped:
        pytest.skip(r.skipped)
    assert r.checks, "a scenario that checks nothing"
    assert r.passed, f"{name}: " + "; ".join(r.failures()) + f"\nfigures: {r.figures}"


def test_report_table_and_checks() -> None:
    kit = importlib.import_module("chaos_kit")
    ok = kit.Result("a", did="did | this", figures={"x": 1, "y": "2 ms"})
    ok.check("held", True)
    bad = kit.Result("b", did="that")
    bad.check("broke", False, "why")
    skipped = kit.Result("c", skipped="no tmpfs")
    text = report.render({"date": "today", "host": "h", "python": "3.11"},
                         [r.as_dict() for r in (ok, bad, skipped)])
    assert "| a | did \\| this | x: 1<br>y: 2 ms | **pass** (0 s) | " \
           "`python bench/chaos.py --full --only a` |" in text
    assert "| b | that |  | **FAIL** (0 s) |" in text
    assert "| c |  |  | skipped: no tmpfs (0 s) |" in text
    assert "- [x] held" in text and "- [ ] broke — why" in text
