"""docs/RELIABILITY.md from a full chaos run's results (pure: dicts in, markdown out)."""

from __future__ import annotations

from typing import Any

INTRO = """\
# Reliability: the chaos suite

What the engine was put through (issue 12), and what it measured. Each scenario runs a
real headless engine (`python -m tui_supervisor run --headless -c CFG`) on real child
processes, signals, pipes and its control socket, then checks; a check never bounds a
time (the figures say how fast). The quick forms of the same scenarios run in CI
(`tests/test_chaos.py`, ~40 s); the full forms below are

    python bench/chaos.py --full         # rewrites this file
    python bench/chaos.py --only NAME [--full]   # one scenario, printed only

Every scenario stops what it started by PID (engines, then the services found by their
marker), and unmounts what it mounted, even when it fails.
"""


NOTES = """\
## What the full runs found

The first full run (2026-12-05 08:06 UTC) found two defects, both fixed since and
measured again by the run above:

- **crash-loop**: the engine's RSS grew with the failures of the last hour (28 -> 61 MiB
  over 100,000 failures in ~3 min): `metrics/reliability.py` kept every failure time,
  outage and up-span of its one-hour window. Each series now keeps at most 2048 entries,
  merging the oldest with their sums kept (28.2 -> 31.0 MiB over 100,086 failures).
- **socket-abuse**: with the connection cap (128) held by idle clients, `status` from a
  new process was refused (`busy`) until the idle ones were cut at 60 s (answered after
  ~50 s of retries). At the cap the oldest connection that has sent no request now makes
  room: `status` answered at the first try (0.23 s) with 500 idle connections. (The
  "idle connections held" figure counts connections the client opened; the engine closes
  the oldest idle ones as new ones come.)
"""


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    out = [INTRO, f"Last full run: {meta['date']} on {meta['host']}, "
                  f"Python {meta['python']}.\n",
           "| scenario | what was done | figures | result | command |",
           "|---|---|---|---|---|"]
    for r in results:
        verdict = ("skipped: " + r["skipped"]) if r["skipped"] else (
            "**pass**" if r["passed"] else "**FAIL**")
        figures = "<br>".join(f"{k}: {v}" for k, v in r["figures"].items())
        out.append(f"| {r['name']} | {_cell(r['did'])} | {_cell(figures)} | "
                   f"{_cell(verdict)} ({r['seconds']:g} s) | "
                   f"`python bench/chaos.py --full --only {r['name']}` |")
    out.append("\n" + NOTES)
    out.append("## Checks\n")
    for r in results:
        out.append(f"**{r['name']}**\n")
        if r["skipped"]:
            out.append(f"- skipped: {r['skipped']}")
        for c in r["checks"]:
            mark = "x" if c["ok"] else " "
            detail = "" if c["ok"] or not c["detail"] else f" — {_cell(c['detail'])}"
            out.append(f"- [{mark}] {_cell(c['what'])}{detail}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
