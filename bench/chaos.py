"""The chaos suite of issue 12: kill storms, crash loops, a hammered control socket, the
engine SIGKILLed, code reloads under load, a full disk, hostile services, each against a
real headless engine. Run it with the dev venv's python:

    python bench/chaos.py            # quick forms (what CI runs, tests/test_chaos.py)
    python bench/chaos.py --full     # full forms (~10 min on 2 cores); figures into
                                     # docs/RELIABILITY.md
    python bench/chaos.py --only kill-storm,crash-loop [--full]   # some; prints only
    python bench/chaos.py --render   # the doc again from bench/results/chaos.json

Prints each scenario's figures and checks; exit 1 if any check failed. Only a complete
--full run rewrites docs/RELIABILITY.md (and bench/results/chaos.json). The disk-full
scenario mounts a tmpfs (root only; skipped otherwise).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from chaos_kit import REPO, Result, become_subreaper
from chaos_report import render
from chaos_scenarios import SCENARIOS, run

DOC = REPO / "docs" / "RELIABILITY.md"
RESULTS = REPO / "bench" / "results" / "chaos.json"


def _print(r: Result) -> None:
    verdict = "SKIP" if r.skipped else ("PASS" if r.passed else "FAIL")
    print(f"\n== {r.name}: {verdict} ({r.seconds:.1f} s)", flush=True)
    if r.skipped:
        print(f"   skipped: {r.skipped}")
    for k, v in r.figures.items():
        print(f"   {k}: {v}")
    for c in r.checks:
        if not c.ok:
            print(f"   FAILED {c.what}: {c.detail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    form = ap.add_mutually_exclusive_group()
    form.add_argument("--quick", action="store_true", help="quick forms (default)")
    form.add_argument("--full", action="store_true", help="full forms; writes the doc")
    ap.add_argument("--only", default="", help="comma-separated scenario names: "
                    + ", ".join(SCENARIOS))
    ap.add_argument("--render", action="store_true", help="only render the doc again from "
                    "bench/results/chaos.json")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (configs, "
                    "engine output, logs)")
    args = ap.parse_args(argv)
    if args.render:
        saved = json.loads(RESULTS.read_text())
        DOC.write_text(render(saved["meta"], saved["results"]))
        return 0
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    become_subreaper()  # orphans of a SIGKILLed engine come here and are reaped
    work = Path(tempfile.mkdtemp(prefix="tuisup-chaos-"))
    results = []
    try:
        for name in names:
            results.append(run(name, work / name, args.full))
            _print(results[-1])
    finally:
        if args.keep:
            print(f"\nwork dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [r.name for r in results if not r.passed and not r.skipped]
    print(f"\n{len(results) - len(failed)} of {len(results)} passed or skipped"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if args.full and names == list(SCENARIOS):
        meta = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "host": f"{platform.node()}, {platform.machine()}, "
                        f"{_cores()} cores, Linux {platform.release()}",
                "python": platform.python_version()}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps({"meta": meta, "results": [r.as_dict() for r in results]},
                                      indent=1) + "\n")
        DOC.write_text(render(meta, [r.as_dict() for r in results]))
        print(f"wrote {DOC.relative_to(REPO)} and {RESULTS.relative_to(REPO)}")
    return 1 if failed else 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
