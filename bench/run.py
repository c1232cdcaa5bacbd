"""Run the benchmarks: our engine and supervisord side by side, in the same run.

    python bench/run.py               # everything (~5 min on 2 cores): results/latest.json
                                      # and BENCHMARKS.md
    python bench/run.py --quick       # smoke run (seconds): results/quick.json only
    python bench/run.py --only respawn,idle [--side ours]   # results/partial.json only
    python bench/run.py --only reload --merge   # also into results/latest.json: those
                                      # cases replaced, BENCHMARKS.md re-rendered (the
                                      # other sections unchanged)
    python bench/run.py --setup       # (re)create bench/.venv-supervisord, then exit
    python bench/run.py --render      # BENCHMARKS.md again from results/latest.json

Run it with the dev venv's python (psutil, pyyaml, and tui-supervisor installed in it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import psutil
import setup_env
from cases import CASES, FULL, QUICK, Params
from harness import DRIVERS, REPO, BenchError, Ours, Supervisord, remove_tree, sweep
from report import render

GRACE_S = 20.0
"""How long a supervisor gets to exit on SIGTERM after a case before it is killed."""
BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
MARKDOWN = REPO / "BENCHMARKS.md"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip()


def ours_commit() -> str:
    dirty = _git("status", "--porcelain", "--", "tui_supervisor")
    return _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    sd_python = BENCH / ".venv-supervisord" / "bin" / "python"
    sd_py = subprocess.run([str(sd_python), "-c", "import platform; print(platform."
                            "python_version())"], capture_output=True, text=True, check=False)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "os": platform.system(),
        "python": platform.python_version(),
        "python_supervisord": sd_py.stdout.strip(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "ours_version": Ours.version(),
        "ours_commit": ours_commit(),
        "supervisord_version": Supervisord.version(),
        "cgroups": os.environ.get("TUISUP_BENCH_CGROUPS", "auto"),
    }


def run_case(name: str, side: str, params: Params, root: Path, run_id: str) -> dict[str, Any]:
    """One benchmark on one side; every process it started is gone when this returns."""
    workdir = root / f"{name}-{side}"
    driver = DRIVERS[side](workdir, f"{run_id}/{name}/{side}")
    t0 = time.monotonic()
    try:
        try:
            result = CASES[name](driver, params)
        except BaseException:
            driver.cleanup()  # hard: SIGKILL the supervisor, then sweep
            raise
        # graceful: SIGTERM, and count what the supervisor left behind
        if driver.popen is not None and driver.popen.poll() is None:
            driver.terminate()
            try:
                result["exit_code"] = driver.wait(timeout=GRACE_S)
            except BenchError:
                result["sigterm_timeout"] = True  # killed below, not "left behind"
                driver.cleanup()
        result["left_behind"] = driver.cleanup()
    except BenchError as e:
        result = {"error": str(e), "output": driver.output_tail()}
    except Exception as e:  # a bug in a case: report it, go on with the others
        result = {"error": f"{type(e).__name__}: {e}", "output": driver.output_tail()}
    finally:
        remove_tree(workdir)
    result["case_s"] = round(time.monotonic() - t0, 2)
    return result


def _summary(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {r['error']}"
    keys = {"respawn": ("p50_ms", "p99_ms", "max_ms"), "respawn_busy": ("p50_ms", "p99_ms"),
            "idle": ("cpu_pct", "rss_mib"),
            "start_stop": ("start_s", "stop_s"), "logs_big": ("mb_s", "supervisor_cpu_s"),
            "logs_lines": ("mb_s", "lines_lost"), "crash_loop": ("restarts_per_s", "cpu_pct"),
            "status": ("p50_ms", "p95_ms"), "stream": ("lines_per_s", "lines_missing"),
            "sampler": ("cpu_pct_off", "cpu_pct_on", "sampler_cpu_pct", "loop_lag_p99_ms"),
            "tui_keys": ("key_median_ms", "key_p95_ms", "tick_p95_ms", "cpu_pct", "lines_lost"),
            "tui_tmux": ("tui_cpu_pct", "tui_rss_mib", "headless_cpu_pct"),
            "reload": ("dashboard_save_to_frame_s_p50", "dashboard_pipes_unread_ms_p50",
                       "headless_signal_to_reloaded_s_p50", "headless_pipes_unread_ms_p50",
                       "restarted", "reload_s")}
    r = {**r, **{f"{k}_{s}": v for k, d in r.items() if isinstance(d, dict)
                 for s, v in d.items()}}
    return "  ".join(f"{k}={r[k]:.4g}" for k in keys[name]
                     if isinstance(r.get(k), int | float)) + \
        (f"  LEFT BEHIND {r['left_behind']}" if r.get("left_behind") else "")


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run with tiny sizes")
    p.add_argument("--only", help=f"comma-separated cases: {','.join(CASES)}")
    p.add_argument("--side", choices=("both", *DRIVERS), default="both")
    p.add_argument("--setup", action="store_true", help="(re)create supervisord's venv, exit")
    p.add_argument("--render", action="store_true", help="rewrite BENCHMARKS.md, exit")
    p.add_argument("--merge", action="store_true",
                   help="with --only: put the results into results/latest.json (those cases "
                        "replaced, the rest kept) and re-render BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.merge and (not args.only or args.quick):
        p.error("--merge needs --only and no --quick")
    if args.merge and not (RESULTS / "latest.json").exists():
        p.error(f"--merge: no {RESULTS / 'latest.json'} to merge into (a full run writes it)")

    if args.setup:
        print(f"supervisord {setup_env.ensure(force=True)} in {setup_env.VENV}")
        return 0
    if args.render:
        MARKDOWN.write_text(render(json.loads((RESULTS / "latest.json").read_text())))
        print(f"wrote {MARKDOWN}")
        return 0
    cases = args.only.split(",") if args.only else list(CASES)
    if unknown := [c for c in cases if c not in CASES]:
        p.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    sides = list(DRIVERS) if args.side == "both" else [args.side]
    partial = bool(args.only) or args.side != "both"
    out_name = "quick.json" if args.quick else "partial.json" if partial else "latest.json"

    setup_env.ensure()
    if Ours.version() == "unknown":
        print("cannot run tui-supervisor from this venv: pip install -e .", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)

    run_id = uuid.uuid4().hex[:12]
    params = QUICK if args.quick else FULL
    root = Path(tempfile.mkdtemp(prefix="tuisup-bench-"))
    results: dict[str, Any] = {
        "command": shlex.join(["python", "bench/run.py", *sys.argv[1:]]),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick, "machine": machine(), "params": vars(params), "cases": {},
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    t0 = time.monotonic()
    failed = interrupted = False
    try:
        for name in cases:
            for side in sides:
                print(f"[{name}] {side} ...", end=" ", flush=True, file=sys.stderr)
                r = run_case(name, side, params, root, run_id)
                results["cases"].setdefault(name, {})[side] = r
                failed |= "error" in r
                print(_summary(name, r), file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        failed = interrupted = True
    finally:
        stray = sweep(run_id)
        remove_tree(root)
        left = [c.pid for c in psutil.Process().children(recursive=True)]
        if stray or left:
            print(f"WARNING: had to kill stray processes {stray}; children left {left}",
                  file=sys.stderr)
    results["total_s"] = round(time.monotonic() - t0, 1)
    results["ours_commit_at_end"] = ours_commit()
    results["stray_processes"] = stray
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / out_name).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS / out_name} ({results['total_s']} s)", file=sys.stderr)
    if out_name == "latest.json" and not interrupted:  # errors show in the table
        MARKDOWN.write_text(render(results))
        print(f"wrote {MARKDOWN}", file=sys.stderr)
    if args.merge:
        if failed:
            print("not merged into latest.json: this run had errors", file=sys.stderr)
        else:
            merge(results)
    return 1 if failed else 0


def merge(results: dict[str, Any]) -> None:
    """The cases of a partial run into results/latest.json (each side run replaces that
    side; every other case stays), noted under "merged"; BENCHMARKS.md re-rendered."""
    path = RESULTS / "latest.json"
    latest = json.loads(path.read_text())
    for name, case in results["cases"].items():
        latest["cases"].setdefault(name, {}).update(case)
        latest.setdefault("merged", {})[name] = {
            k: results[k] for k in ("command", "started", "loadavg", "total_s",
                                    "ours_commit_at_end")} | {
            "ours_commit": results["machine"]["ours_commit"]}
    path.write_text(json.dumps(latest, indent=1) + "\n")
    MARKDOWN.write_text(render(latest))
    print(f"merged {', '.join(results['cases'])} into {path}; wrote {MARKDOWN}",
          file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
