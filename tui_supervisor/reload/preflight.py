"""The pre-flight of a code reload: is the code on disk fit to exec into?

Every .py file is compiled in memory (a SyntaxError anywhere, as file:line), and a fresh
interpreter imports the app and loads the config as the new image will (errors that only
running the imports shows). The fresh interpreter costs about 0.3 s, most of it importing
textual; while the engine follows its own source, a warm helper (`WarmPreflight`) keeps
the third-party libraries imported — never this package — and forks a child per check,
which then only imports the package: the same check, about 0.1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from tui_supervisor.reload.safe import preflight_script

PACKAGE = Path(__file__).resolve().parent.parent
PREFLIGHT_TIMEOUT = 30.0
WARM_DELAY = 1.0
"""Seconds after the watcher starts before the warm helper starts (not to compete with
the UI's own start-up for the CPU)."""

WARM_MODULES = ("textual.app", "textual.widgets", "textual.containers", "textual.screen",
                "textual.binding", "textual.command", "rich.text", "rich.console", "yaml",
                "psutil", "prometheus_client")
WARM_SERVER = f"""
import json, os, signal, sys, traceback
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl+C at the dashboard is not for us
for name in {WARM_MODULES!r}:
    try:
        __import__(name)
    except Exception:
        pass
assert not any(m.split(".")[0] == "tui_supervisor" for m in sys.modules)
sys.stdout.write("ready\\n")
sys.stdout.flush()
for line in sys.stdin:
    script = json.loads(line)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 2)
        code = 0
        try:
            exec(compile(script, "<preflight>", "exec"), {{"__name__": "__preflight__"}})
        except SystemExit as e:
            if isinstance(e.code, str):
                sys.stderr.write(e.code + "\\n")
                code = 1
            else:
                code = e.code or 0
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    os.close(w)
    err = b""
    with os.fdopen(r, "rb") as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({{"rc": os.waitstatus_to_exitcode(status),
                                 "err": err.decode(errors="replace")[-8000:]}}) + "\\n")
    sys.stdout.flush()
"""


def compile_errors(root: Path = PACKAGE) -> list[str]:
    """Every .py under `root` compiled in memory: "file:line: message" for each failure."""
    errors = []
    for path in sorted(root.rglob("*.py")):
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as e:
            errors.append(f"{e.filename}:{e.lineno}: {e.msg}")
        except (OSError, ValueError) as e:
            errors.append(f"{path}: {e}")
    return errors


class WarmPreflight:
    """A helper interpreter with the third-party libraries imported that forks one child
    per check. Only a speed-up: if it is not ready or fails, the check runs fresh."""

    def __init__(self, argv: list[str], cwd: str) -> None:
        self.argv, self.cwd = argv, cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self._lock = asyncio.Lock()
        self.starting: asyncio.TimerHandle | asyncio.Task[None] | None = None
        """The pending start (timer, then task): `close` cancels or awaits it."""

    def begin(self) -> None:
        self.starting = asyncio.ensure_future(self.start())

    async def start(self) -> None:
        with contextlib.suppress(OSError):
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, "-c", WARM_SERVER, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                cwd=self.cwd)
            assert self.proc.stdout is not None
            with contextlib.suppress(TimeoutError, OSError):
                line = await asyncio.wait_for(self.proc.stdout.readline(), PREFLIGHT_TIMEOUT)
                self.ready = line == b"ready\n"
        if not self.ready:
            await self.close()

    async def check(self, script: str) -> tuple[int, str] | None:
        """(exit code, stderr) of `script` in a forked child; None if the helper is not
        usable (it is closed then)."""
        if not self.ready or self.proc is None:
            return None
        async with self._lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            try:
                self.proc.stdin.write(json.dumps(script).encode() + b"\n")
                await self.proc.stdin.drain()
                line = await asyncio.wait_for(self.proc.stdout.readline(), PREFLIGHT_TIMEOUT)
                reply: dict[str, Any] = json.loads(line)
                return int(reply["rc"]), str(reply["err"])
            except (OSError, ValueError, KeyError, TypeError, TimeoutError):
                await self.close()
                return None

    async def close(self) -> None:
        self.ready = False
        starting, self.starting = self.starting, None
        if isinstance(starting, asyncio.TimerHandle):
            starting.cancel()
        elif starting is not None and starting is not asyncio.current_task():
            with contextlib.suppress(Exception):  # let it finish: then its process is known
                await asyncio.wait_for(asyncio.shield(starting), PREFLIGHT_TIMEOUT)
            self.ready = False
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)


_warm: WarmPreflight | None = None


def start_warm(loop: asyncio.AbstractEventLoop, argv: list[str], cwd: str) -> None:
    """Start the warm helper (after WARM_DELAY) for the checks of this process."""
    global _warm
    if _warm is None:
        _warm = WarmPreflight(argv, cwd)
        _warm.starting = loop.call_later(WARM_DELAY, _warm.begin)


async def stop_warm() -> None:
    """Stop the warm helper (before an exec; at shutdown)."""
    global _warm
    warm, _warm = _warm, None
    if warm is not None:
        await warm.close()


async def preflight(config_path: str | os.PathLike[str] | None = None,
                    argv: list[str] | None = None, cwd: str | None = None) -> str | None:
    """None if the code on disk compiles and imports in a fresh interpreter (which also
    loads `config_path` as the new image will); else why not (its stderr's last lines)."""
    argv = argv or [sys.executable]
    script = preflight_script(str(config_path) if config_path else None)
    compiled = asyncio.get_running_loop().run_in_executor(None, compile_errors)
    result = await _warm.check(script) if _warm is not None else None
    if result is None:
        result = await _fresh(argv, script, cwd)
    errors = await compiled
    if errors:  # (more precise than the import's error: every file, file:line)
        return "; ".join(errors[:5])
    if result is None:
        return f"importing the new code took over {PREFLIGHT_TIMEOUT:g}s"
    rc, err = result
    if rc:
        lines = err.strip().splitlines()
        return " | ".join(lines[-3:]) or f"import failed (exit {rc})"
    return None


async def _fresh(argv: list[str], script: str, cwd: str | None) -> tuple[int, str] | None:
    proc = await asyncio.create_subprocess_exec(
        *argv, "-c", script, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=cwd)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), PREFLIGHT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    return proc.returncode or 0, err.decode(errors="replace")
