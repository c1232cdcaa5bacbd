"""Static checks, run by mypy (not pytest: see [tool.mypy] in pyproject.toml): every
implementation of SupervisorAPI — the engine, the control-socket client and the tests'
fake — has its exact shape (a method missing or returning another type fails mypy)."""

from __future__ import annotations

from support import FixedAPI

from tui_supervisor.control.client import RemoteSupervisor
from tui_supervisor.engine.api import SupervisorAPI
from tui_supervisor.engine.supervisor import Supervisor


def implementations(engine: Supervisor, remote: RemoteSupervisor,
                    fake: FixedAPI) -> list[SupervisorAPI]:
    return [engine, remote, fake]
