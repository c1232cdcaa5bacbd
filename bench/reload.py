"""Code reload of a headless engine, measured: N reloads in a row (SIGUSR2) while a
service prints 1000 lines a second.

    python bench/reload.py [N]        # with the dev venv's python; ~N x 1.5 s

Prints, per reload: SIGUSR2 -> the new image says "code reloaded" (pre-flight included),
and how long the pipes went unread (detach -> adopt, as the new image reports it); then
whether every line is in the log exactly once and the PIDs stayed the same.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNTER = ROOT / "tests" / "children" / "counter.py"


def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tuisup-reload-"))
    cfg = tmp / "reload.yaml"
    cfg.write_text("settings: {sample_interval: 1s, watch_code: false}\nservices:\n"
                   f"  tick:\n    command: [{sys.executable}, {COUNTER}, '0', '0.001']\n")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp / "state"),
           "XDG_RUNTIME_DIR": str(tmp / "run"), "PYTHONPATH": str(ROOT)}
    out = tmp / "engine.out"
    with open(out, "wb") as f:
        eng = subprocess.Popen([sys.executable, "-m", "tui_supervisor", "run", "--headless",
                                "--quiet", "-c", str(cfg)], stdout=f, stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)

    def status() -> dict:
        r = subprocess.run([sys.executable, "-m", "tui_supervisor", "status", "--json", "-c",
                            str(cfg)], capture_output=True, text=True, env=env)
        return json.loads(r.stdout) if r.returncode == 0 else {}

    try:
        while not (s := status()) or not s["services"][0]["pid"]:
            time.sleep(0.1)
        first = s["services"][0]["pid"]
        time.sleep(1.0)
        took, gaps = [], []
        for i in range(1, n + 1):
            t0 = time.monotonic()
            os.kill(eng.pid, signal.SIGUSR2)
            while out.read_text().count("code reloaded:") < i:
                if time.monotonic() - t0 > 30:
                    raise SystemExit(f"reload {i} did not happen:\n{out.read_text()}")
                time.sleep(0.005)
            took.append(time.monotonic() - t0)
            gaps.append(float(re.findall(r"pipes unread for (\d+) ms", out.read_text())[-1]))
            time.sleep(0.5)
        s = status()
        log = Path(s["services"][0]["log_file"])
        same = s["engine"]["pid"] == eng.pid and s["services"][0]["pid"] == first
    finally:
        eng.send_signal(signal.SIGTERM)
        eng.wait(30)
    numbers = [int(line.split()[1]) for line in log.read_text().splitlines()]
    exact = numbers == list(range(len(numbers)))
    print(f"{n} code reloads, one service printing 1000 lines/s")
    print(f"SIGUSR2 -> 'code reloaded': p50 {statistics.median(took) * 1000:.0f} ms, "
          f"max {max(took) * 1000:.0f} ms (pre-flight included)")
    print(f"pipes unread (detach -> adopt): p50 {statistics.median(gaps):.0f} ms, "
          f"max {max(gaps):.0f} ms")
    print(f"lines: {len(numbers)}, every one exactly once and in order: {exact}; "
          f"engine and service PIDs unchanged: {same}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
