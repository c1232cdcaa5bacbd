"""The start-up guard of a code reload's new image, and the safe mode it falls back to.

A code reload execs `python <runtime_dir>/boot.py ...`: a copy of this file taken by the
old image when it loaded it (so an edit to this file cannot break the next start-up). It
reads the detach record, keeps duplicates of the fds it names, and runs the program the
way it was first launched (`-m tui_supervisor` or the console script). The new code calls
`adopted()` (via `tui_supervisor.reload.code.adopted`) once its engine carries the
services; the duplicates are closed then and the guard steps aside.

If the new code fails before that — an exception, an exit, a config that no longer loads
— the process stays (same PID: the services remain its children) and runs the safe mode:
it reads every service pipe into the log files (and the record's ring), reaps orphans but
leaves the services' own exits as zombies for the next image to collect with their status,
answers the control socket with what happened, and execs again once the source (or the
config) changes and passes the pre-flight, or on SIGUSR2 / `reload --code`. SIGTERM or
SIGINT stop the services (SIGTERM to each group, SIGKILL after STOP_TIMEOUT) and exit.

Stdlib only, and no import of tui_supervisor: this must run when the package cannot.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Any

HANDOFF_VAR = "TUISUP_HANDOFF"
BOOT_MODULE = "tui_supervisor_boot"
"""sys.modules entry through which the new code says it has adopted the services."""
PREFLIGHT_IMPORT = "import tui_supervisor.cli, tui_supervisor.tui.app, tui_supervisor.metrics"


def preflight_script(config_path: str | None) -> str:
    """What the pre-flight's fresh interpreter runs: import the app, then load the config
    file as the new image will (a config saved broken would stop it at start-up)."""
    if not config_path:
        return PREFLIGHT_IMPORT
    return (PREFLIGHT_IMPORT + "\nimport sys\n"
            "from tui_supervisor.config import ConfigError, load_config\n"
            f"try:\n    load_config({config_path!r})\n"
            "except ConfigError as e:\n"
            "    sys.exit('the config does not load: ' + '; '.join(map(str, e.issues)))\n")
POLL = 0.5
"""Seconds between looks at the source and the config (and at exited services)."""
STOP_TIMEOUT = 10.0
RING_KEEP = 2000
"""Lines per service kept for the next image's ring (the log file gets them all)."""
MAX_LINE = 64 * 1024


def _say(msg: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.write(2, f"{time.strftime('%F %T')} safe mode: {msg}\n".encode(errors="replace"))


def execv_keeping_usr1(path: str, argv: list[str]) -> None:
    """os.execv with SIGUSR1 ignored across it. A caught signal is back to its default
    action (the end of the process) in the new image until it handles it again, a while
    (the interpreter starts, the package is imported): logrotate's SIGUSR1 then must not
    end the engine and strand its services. Raises as execv; SIGUSR1 restored then."""
    try:
        old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    except ValueError:  # not the main thread: cannot change it
        old = None
    try:
        os.execv(path, argv)
    except OSError:
        if old is not None:
            signal.signal(signal.SIGUSR1, old)
        raise


def notify_fd(svc: dict[str, Any]) -> int | None:
    """The fd of a service's NOTIFY_SOCKET in its handoff record (engine/notify.py)."""
    notify = (svc.get("probes") or {}).get("notify")
    return notify.get("fd") if isinstance(notify, dict) else None


def record_fds(record: dict[str, Any]) -> list[int]:
    fds = [p["fd"] for s in record.get("services", []) for p in s.get("pipes", [])]
    fds += [fd for s in record.get("services", []) if (fd := notify_fd(s)) is not None]
    if record.get("lock_fd") is not None:
        fds.append(record["lock_fd"])
    parent = (record.get("host") or {}).get("parent_fd")
    if parent is not None:
        fds.append(parent)
    return fds


class Guard:
    """Duplicates of the record's fds, held until the new code adopts the services."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.dups: dict[int, int] = {}
        for fd in record_fds(record):
            with contextlib.suppress(OSError):
                self.dups[fd] = os.dup(fd)  # not inheritable
        self.done = False

    def adopted(self) -> None:
        """The new image carries the services: let go of the duplicates."""
        if self.done:
            return
        self.done = True
        for fd in self.dups.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.dups.clear()


def main() -> None:
    """Entry of boot.py: run the program as first launched; safe mode if it fails
    before adopting the services."""
    path = os.environ.get(HANDOFF_VAR, "")
    boot_path = os.path.abspath(sys.argv[0])
    with open(boot_path, "rb") as f:
        boot_source = f.read()
    with open(path) as f:
        record = json.load(f)
    launch = record["launch"]
    sys.argv = list(launch["argv"])
    sys.orig_argv = list(launch["orig_argv"])
    sys.path[0] = launch["path0"]
    guard = Guard(record)
    hook = types.ModuleType(BOOT_MODULE)
    hook.adopted = guard.adopted  # type: ignore[attr-defined]
    hook.boot_source = boot_source  # type: ignore[attr-defined]
    sys.modules[BOOT_MODULE] = hook
    try:
        if launch.get("module"):
            runpy.run_module(launch["module"], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(launch["argv"][0], run_name="__main__")
    except SystemExit as e:
        if guard.done:
            raise
        why = f"it exited (status {e.code}) before taking over the services"
    except BaseException as e:  # whatever the new code does, the services stay up
        if guard.done:
            raise
        why = _explain(e, record)
    else:
        if guard.done:
            return
        why = "it returned before taking over the services"
    SafeMode(record, guard, path, boot_path, boot_source, why).run()


def _explain(e: BaseException, record: dict[str, Any]) -> str:
    """One line for the console (the error and where it was raised); the traceback goes
    to the engine's log (under a dashboard, stderr is the terminal: not there)."""
    last = "".join(traceback.format_exception_only(e)).strip().splitlines()
    why = last[-1] if last else type(e).__name__
    frames = traceback.extract_tb(e.__traceback__)
    if frames:
        f = frames[-1]
        why += f" (at {f.filename}:{f.lineno} in {f.name})"
    text = "".join(traceback.format_exception(e))
    log = (record.get("host") or {}).get("log")
    if (record.get("host") or {}).get("mode") == "hosted" and log:
        try:
            with open(log, "a") as out:
                out.write(f"{time.strftime('%F %T')} the new code failed at start-up:\n{text}")
            return why + f"; traceback in {log}"
        except OSError:
            pass
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()
    return why


class _Log:
    """A service's log file, appended to and rotated as the engine does (name.log,
    name.log.1, ...; between reads here, not between lines)."""

    def __init__(self, svc: dict[str, Any]) -> None:
        self.name, self.path = svc["name"], svc["log_path"]
        self.max_bytes = int(svc.get("log_max_bytes") or 0)
        self.backups = int(svc.get("log_backups") or 0)
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size
        self.failing = False

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                       0o644)

    def reopen(self, if_moved: bool) -> None:
        """Write at the path again (after logrotate renamed the file, or `rm`); `if_moved`:
        only if the file there is not the one written to."""
        try:
            if if_moved:
                try:
                    st = os.stat(self.path)
                    fst = os.fstat(self.fd)
                    if (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino):
                        return
                except FileNotFoundError:
                    pass
            fd = self._open()
        except OSError as e:
            _say(f"{self.name}: cannot reopen its log file: {e}")
            return
        os.close(self.fd)
        self.fd, self.size = fd, os.fstat(fd).st_size

    def write(self, data: bytes) -> None:
        try:
            if self.max_bytes > 0 and self.size and self.size + len(data) > self.max_bytes:
                self._rotate()
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            self.size += len(data)
            self.failing = False
        except OSError as e:
            if not self.failing:  # said once, until a write works again
                self.failing = True
                _say(f"{self.name}: log write failed: {e}")

    def _rotate(self) -> None:
        os.close(self.fd)
        self.fd = -1  # (never write to a closed fd's number: it may be reused)
        try:
            if self.backups > 0:
                for i in range(self.backups - 1, 0, -1):
                    if os.path.exists(f"{self.path}.{i}"):
                        os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
                os.replace(self.path, f"{self.path}.1")
            else:
                os.unlink(self.path)
        finally:
            self.fd, self.size = self._open(), 0


class _Pipe:
    def __init__(self, svc: dict[str, Any], spec: dict[str, Any], log: _Log | None) -> None:
        self.svc, self.spec, self.fd, self.log = svc, spec, spec["fd"], log
        self.partial = spec["partial"].encode("latin-1")


class SafeMode:
    def __init__(self, record: dict[str, Any], guard: Guard, handoff_path: str,
                 boot_path: str, boot_source: bytes, why: str) -> None:
        self.record = record
        self._take_dups(guard.dups)
        guard.dups.clear()
        self.handoff_path, self.boot_path, self.boot_source = (handoff_path, boot_path,
                                                               boot_source)
        self.why = why
        self.since = time.monotonic()
        self.pipes: dict[int, _Pipe] = {}
        self.conns: dict[socket.socket, bytearray] = {}
        self.listener: socket.socket | None = None
        self.socket_ino = 0
        self.keep_pids = {p for s in record["services"]
                          for p in [s.get("pid"), *s.get("daemon_pids", [])] if p}
        self.reported: set[int] = set()
        self.retry = False
        self.stop = False
        self.reopen = False
        self.sigchld = True
        self.package = record["launch"].get("package")
        self.watch = [p for p in [record.get("config_path")] if p]
        self.signature = self._signature()

    def _take_dups(self, dups: dict[int, int]) -> None:
        """From here on the record names our duplicates (the originals get closed)."""
        rec = self.record
        for svc in rec["services"]:
            svc["pipes"] = [{**p, "fd": dups[p["fd"]]} for p in svc.get("pipes", [])
                            if p["fd"] in dups]
            fd = notify_fd(svc)
            if fd is not None:
                svc["probes"]["notify"]["fd"] = dups.get(fd)
        if rec.get("lock_fd") is not None:
            rec["lock_fd"] = dups.get(rec["lock_fd"])
        host = rec.get("host") or {}
        if host.get("parent_fd") is not None:
            host["parent_fd"] = dups.get(host["parent_fd"])
        self.fds = set(dups.values())

    # -- set up -----------------------------------------------------------------------
    def run(self) -> None:
        self._close_others()
        self.sel = selectors.DefaultSelector()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_r = r
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2, signal.SIGCHLD,
                    signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)
        self.sel.register(r, selectors.EVENT_READ, "wake")
        self._open_pipes()
        self._listen()
        n = len(self.record["services"])
        _say(f"the new code failed at start-up: {self.why}")
        _say(f"{n} services keep running (pid {os.getpid()} still their parent); their "
             "output goes on to the log files. Fix the code and save it (or send SIGUSR2, or "
             "`tui-supervisor reload --code`) to start it again; SIGTERM or Ctrl+C stops every "
             "service and exits; closing the terminal does not.")
        self._loop()

    def _close_others(self) -> None:
        """Close every fd the failed image left open but ours and stdio (its sockets,
        inotify fds, the original pipe fds: we hold duplicates)."""
        keep = {0, 1, 2, *self.fds}
        with contextlib.suppress(OSError):
            for name in os.listdir("/proc/self/fd"):
                if int(name) not in keep:
                    with contextlib.suppress(OSError):
                        os.close(int(name))

    def _open_pipes(self) -> None:
        for svc in self.record["services"]:
            log = None
            if svc.get("log_path"):
                try:
                    log = _Log(svc)
                except OSError as e:
                    _say(f"{svc['name']}: cannot open its log file: {e}")
            for spec in svc["pipes"]:
                os.set_blocking(spec["fd"], False)
                pipe = self.pipes[spec["fd"]] = _Pipe(svc, spec, log)
                self.sel.register(pipe.fd, selectors.EVENT_READ, pipe)

    def _listen(self) -> None:
        path = self.record.get("socket_path")
        if not path:
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:  # through the directory's fd: sun_path is short, the runtime dir may not be
            name = f"/proc/self/fd/{dfd}/{os.path.basename(path)}"
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.lstat(name).st_mode):  # a stale one of ours; else
                    os.unlink(name)  # bind says what is in the way
            s.bind(name)
            os.chmod(name, 0o600)
            self.socket_ino = os.lstat(name).st_ino
            s.listen(16)
        except OSError as e:
            _say(f"control socket {path}: {e}")
            s.close()
            return
        finally:
            os.close(dfd)
        s.setblocking(False)
        self.listener = s
        self.sel.register(s, selectors.EVENT_READ, "listen")

    # -- the loop ---------------------------------------------------------------------
    def _on_signal(self, sig: int, _frame: Any) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.stop = True
        elif sig == signal.SIGUSR2:
            self.retry = True
        elif sig == signal.SIGCHLD:
            self.sigchld = True
        elif sig == signal.SIGUSR1:
            self.reopen = True
        # SIGHUP: nothing to reload (and a dashboard's terminal may be gone: stay)

    def _loop(self) -> None:
        next_look = time.monotonic() + POLL
        while True:
            timeout = max(0.0, next_look - time.monotonic())
            for key, _ in self.sel.select(timeout):
                if key.data == "wake":
                    with contextlib.suppress(OSError):
                        os.read(self.wake_r, 512)
                elif key.data == "listen":
                    self._accept()
                elif isinstance(key.data, _Pipe):
                    self._read(key.data)
                else:
                    self._serve(key.fileobj)  # type: ignore[arg-type]
            if self.stop:
                self._stop_all()
            if self.sigchld:
                self.sigchld = False
                self._reap()
            if self.reopen:
                self.reopen = False
                self._reopen_logs(if_moved=False)
            if self.retry:
                self.retry = False
                self._try_again("asked to")
            elif time.monotonic() >= next_look:
                next_look = time.monotonic() + POLL
                self._reap()  # (a SIGCHLD that came before our handler was in place)
                self._reopen_logs(if_moved=True)
                if self._signature() != self.signature:
                    time.sleep(0.2)  # an editor's burst of writes
                    self.signature = self._signature()
                    self._try_again("the code or config changed")

    def _reopen_logs(self, if_moved: bool) -> None:
        for log in {id(p.log): p.log for p in self.pipes.values() if p.log}.values():
            log.reopen(if_moved)

    def _read(self, pipe: _Pipe) -> bool:
        """Read what the pipe holds now (False: nothing, or it was closed)."""
        try:
            data = os.read(pipe.fd, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:  # the service closed it: its last partial line is a line
            if pipe.partial:
                self._lines(pipe, pipe.partial + b"\n")
            self.sel.unregister(pipe.fd)
            os.close(pipe.fd)
            del self.pipes[pipe.fd]
            pipe.svc["pipes"] = [p for p in pipe.svc["pipes"] if p is not pipe.spec]
            return False
        buf = pipe.partial + data
        cut = buf.rfind(b"\n")
        if cut < 0 and len(buf) < MAX_LINE:
            pipe.partial = buf
            return True
        end = cut + 1 if cut >= 0 else len(buf)
        pipe.partial = buf[end:]
        self._lines(pipe, buf[:end] if cut >= 0 else buf + b"\n")
        return True

    def _lines(self, pipe: _Pipe, data: bytes) -> None:
        """Complete lines: to the log file, and to the ring the next image starts from."""
        if pipe.log is not None:
            pipe.log.write(data)
        ring = pipe.svc["ring"]
        t = time.time()
        offset = ring["next_offset"]
        lines = ring["lines"]
        for raw in data.split(b"\n")[:-1]:
            lines.append([offset, t, pipe.spec["stream"], raw.decode("utf-8", "replace")])
            offset += len(raw) + 1
        ring["next_offset"] = offset
        if len(lines) > RING_KEEP:
            del lines[:-RING_KEEP]

    def _drain(self) -> None:
        for pipe in list(self.pipes.values()):
            for _ in range(256):
                if pipe.fd not in self.pipes or not self._read(pipe):
                    break

    def _children(self) -> set[int]:
        out: set[int] = set()
        with contextlib.suppress(OSError):
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError), \
                        open(f"/proc/self/task/{tid}/children") as f:
                    out.update(int(x) for x in f.read().split())
        return out

    def _reap(self) -> None:
        """Reap orphans; leave the services' own exits (zombies) for the next image, which
        collects them with their status and applies the restart policy."""
        for pid in self._children():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                continue
            if pid in self.keep_pids:
                if pid not in self.reported:
                    self.reported.add(pid)
                    name = next((s["name"] for s in self.record["services"]
                                 if pid == s.get("pid") or pid in s.get("daemon_pids", [])),
                                "?")
                    _say(f"{name} (pid {pid}) exited; the next image handles it by its "
                         "restart policy")
                continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)

    # -- the control socket -----------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                  struct.calcsize("3i")))[2]
        if uid not in (0, os.getuid()):
            self._send(conn, {"id": None, "ok": False, "error": {
                "code": "permission_denied",
                "message": f"uid {uid} may not control this engine"}})
            conn.close()
            return
        self._send(conn, {"hello": "tui-supervisor", "protocol": 1, "pid": os.getpid(),
                          "version": "safe-mode", "safe_mode": self._marker()})
        conn.setblocking(False)
        self.conns[conn] = bytearray()
        self.sel.register(conn, selectors.EVENT_READ, "conn")

    def _send(self, conn: socket.socket, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(1.0)
            conn.sendall(json.dumps(msg).encode() + b"\n")
            conn.setblocking(False)

    def _drop(self, conn: socket.socket) -> None:
        self.sel.unregister(conn)
        self.conns.pop(conn, None)
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = self.conns[conn]
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            try:
                req = json.loads(line)
                rid, cmd, args = req.get("id"), req.get("cmd"), req.get("args") or {}
            except (ValueError, AttributeError):
                self._send(conn, {"id": None, "ok": False, "error": {
                    "code": "bad_request", "message": "not a JSON object"}})
                continue
            if cmd == "reload" and args.get("code"):
                err = self._preflight()
                self._send(conn, {"id": rid, "ok": True, "result": {
                    "ok": err is None, "errors": [err] if err else []}})
                if err is None:
                    self._exec()
                continue
            if cmd == "shutdown":  # as SIGTERM (the reply names what was up)
                up = [s["name"] for s in self.record["services"]
                      if s.get("pid") or s.get("daemon_pids")]
                self._send(conn, {"id": rid, "ok": True, "result": {
                    "ok": True, "pid": os.getpid(), "stopping": up}})
                self.stop = True
                continue
            self._send(conn, {"id": rid, "ok": False, "error": {  # protocol.SAFE_MODE
                "code": "safe_mode", "message": self._status(), "safe_mode": self._marker()}})
        if len(buf) > 1 << 20:
            self._drop(conn)

    def _marker(self) -> dict[str, Any]:
        """The structured form of `_status`, for clients (control/errors.py reads it; a
        safe mode from an older copy of this file has only the text)."""
        return {"pid": os.getpid(), "seconds": time.monotonic() - self.since,
                "why": self.why, "services": len(self.record["services"])}

    def _status(self) -> str:
        mins = (time.monotonic() - self.since) / 60
        return (f"in safe mode for {mins:.1f} min (pid {os.getpid()}): the new code "
                f"failed at start-up ({self.why}); its {len(self.record['services'])} "
                "services keep running and their output is logged; fix the code and save "
                "it, or run `tui-supervisor reload --code`")

    # -- leaving safe mode ------------------------------------------------------------
    def _signature(self) -> list[tuple[str, int, int]]:
        out = []
        for p in sorted(self.watch + self._sources(".py", ".tcss")):
            with contextlib.suppress(OSError):
                st = os.stat(p)
                out.append((p, st.st_mtime_ns, st.st_size))
        return out

    def _sources(self, *suffixes: str) -> list[str]:
        out: list[str] = []
        if self.package:
            for root, dirs, files in os.walk(self.package):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                out += [os.path.join(root, f) for f in sorted(files) if f.endswith(suffixes)]
        return out

    def _preflight(self) -> str | None:
        """None if the code compiles and imports in a fresh interpreter; else why not."""
        for p in self._sources(".py"):
            try:
                with open(p, "rb") as fh:
                    compile(fh.read(), p, "exec", dont_inherit=True)
            except SyntaxError as e:
                return f"{e.filename}:{e.lineno}: {e.msg}"
            except (OSError, ValueError) as e:
                return f"{p}: {e}"
        launch = self.record["launch"]
        try:  # reaping waits meanwhile: the loop is not running
            r = subprocess.run([sys.executable, *launch.get("opts", []), "-c",
                                preflight_script(self.record.get("config_path"))],
                               capture_output=True, timeout=30,
                               cwd=launch.get("cwd") or None, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return "importing the new code took over 30s"
        except OSError as e:
            return f"cannot run the pre-flight: {e}"
        if r.returncode:
            lines = r.stderr.decode(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:]) or f"import failed (exit {r.returncode})"
        return None

    def _try_again(self, why: str) -> None:
        err = self._preflight()
        if err is not None:
            _say(f"{why}, but the code is still not usable: {err}")
            return
        _say(f"{why}: the code passes the pre-flight; starting it again")
        self._exec()

    def _exec(self) -> None:
        """Hand the record (with what was read meanwhile) to a new image; returns only
        if the exec failed (safe mode goes on). Our other fds are CLOEXEC."""
        rec = self.record
        for pipe in self.pipes.values():
            pipe.spec["partial"] = pipe.partial.decode("latin-1")
        fds = [fd for fd in [*self.pipes, rec.get("lock_fd"),
                             (rec.get("host") or {}).get("parent_fd")] if fd is not None]
        rec["detached_mono"] = time.monotonic()
        rec["safe_mode"] = {"seconds": time.monotonic() - self.since, "why": self.why}
        for path, data in ((self.handoff_path, json.dumps(rec).encode()),
                           (self.boot_path, self.boot_source)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                         | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        for x in fds:
            os.set_inheritable(x, True)
        os.environ[HANDOFF_VAR] = self.handoff_path
        launch = rec["launch"]
        try:
            os.chdir(launch.get("cwd") or "/")
            execv_keeping_usr1(sys.executable, [sys.executable, *launch.get("opts", []),
                                                self.boot_path, *launch["argv"][1:]])
        except OSError as e:
            _say(f"could not start the new image ({e}); staying in safe mode")
            for x in fds:
                with contextlib.suppress(OSError):
                    os.set_inheritable(x, False)

    def _stop_all(self) -> None:
        """SIGTERM to every service's group and daemon, SIGKILL after STOP_TIMEOUT (and
        `cgroup.kill` where the services have cgroups); then exit."""
        _say("stopping all services")
        groups = {s.get("pgid") or s.get("pid") for s in self.record["services"]} - {None}
        daemons = {p for s in self.record["services"] for p in s.get("daemon_pids") or ()}
        cgroups = sorted(Path(self.record["cgroups"]).glob("svc-*")) \
            if self.record.get("cgroups") else []
        for sig in (signal.SIGTERM, signal.SIGCONT):
            for g in groups:
                with contextlib.suppress(OSError):
                    os.killpg(g, sig)
            for p in daemons:
                with contextlib.suppress(OSError):
                    os.kill(p, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and self._alive(groups, cgroups):
            self._drain()
            time.sleep(0.05)
        for g in groups:
            with contextlib.suppress(OSError):
                os.killpg(g, signal.SIGKILL)
        for p in daemons:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        for cg in cgroups:
            with contextlib.suppress(OSError):
                (cg / "cgroup.kill").write_text("1")
        time.sleep(0.05)
        self._drain()
        self._reap_all()
        for cg in [*cgroups, *[c.parent for c in cgroups[:1]]]:
            with contextlib.suppress(OSError):  # empty now: the engine made them
                cg.rmdir()
        if self.listener is not None and self.record.get("socket_path"):
            with contextlib.suppress(OSError):  # ours only (not one bound since)
                if os.lstat(self.record["socket_path"]).st_ino == self.socket_ino:
                    os.unlink(self.record["socket_path"])
        _say("all stopped")
        os._exit(0)

    def _reap_all(self) -> None:
        for pid in self._children():
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    def _alive(self, groups: set[int], cgroups: list[Path]) -> bool:
        """Some group or cgroup still has a live member (zombies of ours reaped first)."""
        self._reap_all()
        for g in groups:
            try:
                os.killpg(g, 0)
                return True
            except OSError:
                continue
        for cg in cgroups:
            with contextlib.suppress(OSError):
                if (cg / "cgroup.procs").read_text().strip():
                    return True
        return False


if __name__ == "__main__":
    main()
