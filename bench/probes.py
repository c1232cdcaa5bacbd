"""The cost of health probes: N services with an http liveness probe every 1 s, the
engine's CPU (psutil cpu_times of the engine process) over a window. Target: ≤ 5 % of
one core for 200 services.

    .venv/bin/python bench/probes.py [--services 200] [--seconds 30] [--settle 5]

The services are `sleep`s (their own cost is not the question); every probe GETs one
stdlib HTTP server the bench runs itself (a 200 with Connection: close), so each check
is a full connect, request, response and close on the engine's event loop. The figure
is printed as one line of Markdown for BENCHMARKS.md ("Health probes").
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # (the default 5 refuses connections at 200 checks a second)
    daemon_threads = True

    errors = 0
    """Requests that failed on the server's side (a probe that reset the connection
    while the answer was written, say): must stay 0."""

    def handle_error(self, request: object, client_address: object) -> None:
        Server.errors += 1


class Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def config(tmp: Path, n: int, port: int) -> Path:
    lines = ["settings:", "  sample_interval: 0", "services:"]
    for i in range(n):
        lines += [f"  s{i}:", "    command: [sleep, '100000']", "    start_time: 0",
                  "    health:",
                  f"      liveness: {{http: {{port: {port}, path: /healthz}}, period: 1s}}"]
    path = tmp / "probes.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def status(env: dict[str, str], cfg: Path) -> dict[str, object] | None:
    import json
    r = subprocess.run([sys.executable, "-m", "tui_supervisor", "status", "--json", "-c",
                        str(cfg)], capture_output=True, text=True, env=env, timeout=60)
    return json.loads(r.stdout) if r.returncode in (0, 3) and r.stdout else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=5.0)
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="tsp-bench-"))
    env = {**os.environ, "XDG_STATE_HOME": str(tmp / "state"),
           "XDG_RUNTIME_DIR": str(tmp / "run"), "PYTHONPATH": str(ROOT)}
    cfg = config(tmp, args.services, server.server_address[1])
    engine = subprocess.Popen([sys.executable, "-m", "tui_supervisor", "run", "--headless",
                               "--quiet", "-c", str(cfg)], env=env, cwd=tmp,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            snap = status(env, cfg)
            services = snap["services"] if snap else []  # type: ignore[index]
            if snap and all(s.get("health") == "ready" for s in services):  # type: ignore[union-attr]
                break
            if time.monotonic() > deadline or engine.poll() is not None:
                print("the services did not all become ready", file=sys.stderr)
                return 1
            time.sleep(0.5)
        time.sleep(args.settle)
        p = psutil.Process(engine.pid)
        before, t0 = p.cpu_times(), time.monotonic()
        time.sleep(args.seconds)
        after, t1 = p.cpu_times(), time.monotonic()
        cpu = (after.user + after.system - before.user - before.system) / (t1 - t0)
        user = (after.user - before.user) / (t1 - t0)
        snap = status(env, cfg) or {}
        checks = sum(sum((pr.get("duration") or {}).get("counts") or [0])
                     for s in snap.get("services", [])  # type: ignore[attr-defined]
                     for pr in (s.get("probes") or {}).values())
        failures = sum(pr.get("failures_total") or 0
                       for s in snap.get("services", [])  # type: ignore[attr-defined]
                       for pr in (s.get("probes") or {}).values())
        verdict = "pass" if cpu <= 0.05 else "**FAIL**"
        print(f"| Engine CPU, {args.services} services with an http probe every 1 s, over "
              f"{args.seconds:g} s (% of one core) | {cpu * 100:.2f} % | ≤ 5 % | {verdict} |")
        print(f"|   of which user / system | {user * 100:.2f} % / {(cpu - user) * 100:.2f} % "
              "| — | — |")
        print(f"| Probe checks done in all / failed | {checks} / {failures} | — | — |")
        print(f"| Requests that failed on the server's side (resets) | {Server.errors} | 0 | "
              f"{'pass' if Server.errors == 0 else '**FAIL**'} |")
        return 0 if cpu <= 0.05 else 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(engine.pid, signal.SIGTERM)
        try:
            engine.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(engine.pid, signal.SIGKILL)
            engine.wait()
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
