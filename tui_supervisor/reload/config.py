"""Automatic config reload: the config file and the env_files it names are watched; a
save (however the editor writes it) reloads the config by diff once. An invalid file
changes nothing; the engine says why (a notice the UI and the console show)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tui_supervisor.engine.events import Notice, Topic
from tui_supervisor.reload.watch import DEBOUNCE, FileWatcher


def watched_files(config: Any) -> list[Path]:
    """The config file and every env_file of its services."""
    files = [Path(config.path)]
    for spec in config.services.values():
        files.extend(spec.env_files)
    return files


class ConfigWatcher:
    """Reloads `sup`'s config when its files change; `start()` on the engine's loop."""

    def __init__(self, sup: Any, debounce: float = DEBOUNCE) -> None:
        self.sup = sup
        self.debounce = debounce
        self.reloads = 0
        self.watcher: FileWatcher | None = None

    def start(self) -> None:
        if not self.sup.config.settings.watch_config:
            return
        loop = asyncio.get_running_loop()
        self.watcher = FileWatcher(loop, watched_files(self.sup.config), self._changed,
                                   self.debounce)
        self.watcher.start()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    async def _changed(self, paths: set[Path]) -> None:
        if not Path(self.sup.config.path).exists():
            return  # deleted (or mid-rename): the next event brings it back
        names = ", ".join(sorted(p.name for p in paths))
        self.sup.bus.emit(Notice(time.time(), "info", f"{names} changed: reloading the config",
                                 topic=Topic.CONFIG_CHANGED,
                                 data={"files": sorted(p.name for p in paths)}))
        await self.sup.reload()
        self.reloads += 1
        if self.watcher is not None:  # env_files may have changed with the config
            self.watcher.set_paths(watched_files(self.sup.config))
