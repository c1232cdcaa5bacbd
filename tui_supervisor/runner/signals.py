"""The engine's signal table (docs/ARCHITECTURE.md §5), one for every front:

| signal          | under the dashboard               | headless      |
|-----------------|-----------------------------------|---------------|
| SIGTERM, SIGINT | stop all (a second one: SIGKILL)  | same          |
| SIGHUP          | the terminal is gone: go headless | reload config |
| SIGUSR2         | code reload                       | code reload   |
| SIGUSR1         | reopen the log files              | same          |

SIGUSR1 is what logrotate's `postrotate` sends (as to nginx): `reopen_logs`.

What differs is the front's (`Front.hangup`); the host keeps the table installed for its
whole life, so a signal that lands between two fronts is never the default (death)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping

Handler = Callable[[], object]


def signal_table(stop: Handler, hangup: Handler, reload_code: Handler,
                 reopen_logs: Handler) -> dict[signal.Signals, Handler]:
    return {signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: hangup,
            signal.SIGUSR2: reload_code, signal.SIGUSR1: reopen_logs}


def install(loop: asyncio.AbstractEventLoop,
            table: Mapping[signal.Signals, Handler]) -> Callable[[], None]:
    """Handle `table`'s signals on `loop`; returns what takes them off again."""
    for sig, handler in table.items():
        loop.add_signal_handler(sig, handler)

    def remove() -> None:
        for sig in table:
            loop.remove_signal_handler(sig)

    return remove
