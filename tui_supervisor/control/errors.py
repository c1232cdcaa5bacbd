"""The errors a control client raises, and the reply errors they are made from.

An error reply becomes the exception the in-process engine raises (UnknownService,
ValueError for a bad signal) where there is one; else one of these.
"""

from __future__ import annotations

from typing import Any, NoReturn

from tui_supervisor.control import protocol as p
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.views import SafeModeInfo


class AccessDenied(PermissionError):
    """The engine's socket or the engine refused this user; `str()` says so in full."""


class NotRunning(Exception):
    """No engine listens on this runtime dir's socket."""


class ControlError(Exception):
    """An error reply that maps to no engine exception (bad request, internal, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InSafeMode(ControlError):
    """The engine is in safe mode (reload/safe.py): its new code failed at start-up, the
    services keep running; only `reload_code` is answered."""

    def __init__(self, message: str, info: Any) -> None:
        super().__init__(p.SAFE_MODE, message)
        self.info = safe_mode_info(message, info)


def safe_mode_info(message: str, marker: Any) -> SafeModeInfo:
    """What a safe mode says about itself, from its reply's `safe_mode` marker. A safe
    mode started from the previous code's copy of safe.py (the first code reload after
    an upgrade) has no marker, only its message: then the summary is the message's first
    part (its text up to "; its N services keep running"), the other fields None."""
    if isinstance(marker, dict) and isinstance(marker.get("why"), str):
        mins = float(marker.get("seconds") or 0.0) / 60
        pid, why = marker.get("pid"), marker["why"]
        return {"pid": pid, "seconds": marker.get("seconds"), "why": why,
                "services": marker.get("services"),
                "summary": f"in safe mode for {mins:.1f} min (pid {pid}): the new code "
                           f"failed at start-up ({why})"}
    return {"pid": None, "seconds": None, "why": None, "services": None,
            "summary": message.split("; its ")[0]}  # (text fallback: see above)


def raise_reply_error(err: Any) -> NoReturn:
    """Raise the exception an error reply's `error` object stands for."""
    if not isinstance(err, dict):
        raise ControlError(p.BAD_REQUEST, f"malformed error: {err!r}")
    code, message = str(err.get("code")), str(err.get("message"))
    if code == p.SAFE_MODE:
        raise InSafeMode(message, err.get("safe_mode"))
    if code == p.UNKNOWN_SERVICE:
        raise UnknownService(err.get("service") or message)
    if code == p.BAD_SIGNAL:
        raise ValueError(message)
    if code == p.PERMISSION_DENIED:
        raise AccessDenied(f"permission denied: {message}")
    raise ControlError(code, message)
