"""The dashboard as a client of a running engine, over its control socket (`attach`):
quitting leaves the engine running (or, "stop all", shuts it down); a code reload of
the engine is ridden out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_supervisor.control.client import RemoteSupervisor
from tui_supervisor.control.errors import NotRunning
from tui_supervisor.control.resume import Reconnect
from tui_supervisor.runner.engine import print_error


async def run_attached(runtime_dir: Path) -> int:
    from tui_supervisor.tui.app import SupervisorApp  # (textual: only for a dashboard)

    client = RemoteSupervisor(runtime_dir, reconnect=Reconnect())  # rides out code reloads
    try:
        await client.connect()
    except (NotRunning, PermissionError) as e:
        print_error(str(e))
        return 1
    try:
        await SupervisorApp(client, mode="attached").run_async()
    finally:
        await client.close()
    return 0


def attach(runtime_dir: Path) -> int:
    return asyncio.run(run_attached(runtime_dir))
