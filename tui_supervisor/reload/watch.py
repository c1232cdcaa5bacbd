"""Watching files with watchdog and turning an editor's burst of events into one call.

Directories are watched, not files: an atomic save (write a temp file, rename it over
the original) replaces the file, and shows up as `moved` (with `dest_path`) or `created`.
The watchdog thread never blocks and never touches engine state: it hands the path to
the loop with `call_soon_threadsafe`, where a debounce timer collects the burst.
watchdog is imported by `start()` only (module import stays cheap for the engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DEBOUNCE = 0.2
"""Seconds of quiet after the last event before the change is acted on."""


def _norm(p: str | bytes | Path) -> str:
    return os.path.realpath(os.fsdecode(p))


class Watcher:
    """Calls `on_change(paths)` on the loop once `debounce` seconds passed without a
    further event on a wanted path (a coroutine is scheduled as a task). Subclasses say
    which directories to watch and which paths they want."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[set[Path]], Any],
                 debounce: float = DEBOUNCE) -> None:
        self.loop = loop
        self.on_change = on_change
        self.debounce = debounce
        self._observer: Any = None
        self._watches: dict[str, Any] = {}
        self._pending: set[Path] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    def dirs(self) -> dict[str, bool]:
        """Directory -> watch it recursively."""
        raise NotImplementedError

    def wanted(self, path: str) -> bool:
        """Whether an event on `path` (normalised) is a change to act on."""
        raise NotImplementedError

    # -- loop thread ------------------------------------------------------------------
    def start(self) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.daemon = True
        self._schedule()
        self._observer.start()

    def stop(self) -> None:
        """Stop the observer thread (its inotify fd, not close-on-exec, closes with it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
            self._watches.clear()

    def _schedule(self) -> None:
        dirs = self.dirs()
        for d in set(self._watches) - set(dirs):
            with contextlib.suppress(Exception):
                self._observer.unschedule(self._watches.pop(d))
        for d in set(dirs) - set(self._watches):
            if os.path.isdir(d):
                self._watches[d] = self._observer.schedule(self, d, recursive=dirs[d])

    def _poke(self, path: str) -> None:
        self._pending.add(Path(path))
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(self.debounce, self._fire)

    def _fire(self) -> None:
        self._timer = None
        paths, self._pending = self._pending, set()
        result = self.on_change(paths)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- watchdog thread --------------------------------------------------------------
    def dispatch(self, event: Any) -> None:
        """What watchdog calls for every event (the handler protocol)."""
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw and self.wanted(_norm(raw)):
                with contextlib.suppress(RuntimeError):  # the loop is closed: we are done
                    self.loop.call_soon_threadsafe(self._poke, _norm(raw))


class FileWatcher(Watcher):
    """Watches these files (through their directories)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, paths: Iterable[Path],
                 on_change: Callable[[set[Path]], Any], debounce: float = DEBOUNCE) -> None:
        super().__init__(loop, on_change, debounce)
        self._files: set[str] = set()
        self.set_paths(paths)

    def set_paths(self, paths: Iterable[Path]) -> None:
        """Watch exactly these files from now on (e.g. after a reload changed env_files)."""
        self._files = {_norm(p) for p in paths}
        if self._observer is not None:
            self._schedule()

    def dirs(self) -> dict[str, bool]:
        return {os.path.dirname(f): False for f in self._files}

    def wanted(self, path: str) -> bool:
        return path in self._files
