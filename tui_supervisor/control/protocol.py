"""The control protocol: JSON lines over a Unix socket.

On connect the server sends a hello, `{"hello": "tui-supervisor", "protocol": 1, "pid",
"version"}`, or an error line and closes (a refused peer: `permission_denied`; too many
connections: `busy`). Then, each way, one JSON object
per line:

- request: `{"id": 1, "cmd": "stop", "args": {"names": ["web"]}}`
- reply: `{"id": 1, "ok": true, "result": ...}` or
  `{"id": 1, "ok": false, "error": {"code": "unknown_service", "message": "..."}}`
- streamed item of a request (subscribe): `{"id": 1, "event": {...}}`; the request's reply
  ends the stream.

A request line longer than MAX_LINE gets a `line_too_long` error and the connection is
closed; so does a connection that sends no request in its first minute (`idle_timeout`).
Stdlib only.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20
"""Longest request line the server reads (bytes)."""
CLIENT_MAX_LINE = 1 << 28
"""Longest line a client reads (a big `logs` reply)."""
SOCKET_NAME = "control.sock"

# error codes
BAD_REQUEST = "bad_request"
LINE_TOO_LONG = "line_too_long"
UNKNOWN_VERB = "unknown_verb"
BAD_ARGS = "bad_args"
UNKNOWN_SERVICE = "unknown_service"
BAD_SIGNAL = "bad_signal"
PERMISSION_DENIED = "permission_denied"
BUSY = "busy"
"""(On connect, instead of the hello) the engine has as many connections as it takes."""
IDLE_TIMEOUT = "idle_timeout"
"""A connection sent no request in its first minute (server.FIRST_REQUEST_TIMEOUT)."""
INTERNAL = "internal"
SAFE_MODE = "safe_mode"
"""Every verb but `reload {code: true}` while the engine is in safe mode (reload/safe.py:
its new code failed at start-up; the services keep running)."""


class ProtocolError(Exception):
    """A message that is not a valid protocol line, with its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def socket_path(runtime_dir: Path) -> Path:
    return Path(runtime_dir) / SOCKET_NAME


@contextlib.contextmanager
def bindable(path: Path) -> Iterator[str]:
    """A name for `path` short enough for sun_path (108 bytes): the path itself, or the
    same file reached through an open fd of its directory (/proc/self/fd/N/name)."""
    if len(os.fsencode(str(path))) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One received line as an object; ProtocolError(bad_request) if it is not one."""
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(BAD_REQUEST, f"not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_REQUEST, "expected a JSON object")
    return msg


def hello(pid: int, version: str) -> dict[str, Any]:
    return {"hello": "tui-supervisor", "protocol": PROTOCOL_VERSION, "pid": pid,
            "version": version}


def reply(req_id: Any, result: Any) -> dict[str, Any]:
    return {"id": req_id, "ok": True, "result": result}


def error(req_id: Any, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"id": req_id, "ok": False, "error": {"code": code, "message": message, **extra}}


def event(req_id: Any, ev: dict[str, Any]) -> dict[str, Any]:
    return {"id": req_id, "event": ev}
