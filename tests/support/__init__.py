"""What the tests share, in one place (test modules import from here, never from each
other; conftest.py holds the fixtures):

- paths: ROOT, PY, CHILDREN
- waiting: wait_until (sync) and wait_for (its async twin), wait_text
- procs: this run's processes (marked_pids, kill_marked, alive, terminate, kill_engines)
- command_line: the CLI as a user runs it (cli, cli_env, write_cfg, svc, state_pids, ...)
- term: Term, a program on a pty
- engine: the engine-process harness (Client, Headless, Dashboard; pids, running)
- code_reload: the code-reload scenario (config, reconnect_config, copy_package)
- subscriptions: Collector, tick_lines, assert_contiguous
- pilot: SIZE, rows, settle (the dashboard under Textual's Pilot)
- fixed_api: FixedAPI and its fixed story (the picture tests)
"""

from .code_reload import NEW_SCREEN, config, copy_package, reconnect_config
from .command_line import (
    cli,
    cli_env,
    free_port,
    one_error_line,
    state_pids,
    svc,
    wait_pids,
    write_cfg,
)
from .engine import Client, Dashboard, Headless, pids, running
from .fixed_api import HEALTH_SNAPSHOT, SNAPSHOT, T0, FixedAPI, settle_picture
from .paths import CHILDREN, PY, ROOT
from .pilot import SIZE, rows, settle
from .procs import (
    RUN_ID,
    RUN_VAR,
    TEST_PREFIX,
    alive,
    kill_engines,
    kill_marked,
    marked_pids,
    reap_zombie_children,
    terminate,
)
from .subscriptions import Collector, assert_contiguous, tick_lines
from .term import Term
from .waiting import wait_for, wait_text, wait_until

__all__ = [
    "CHILDREN", "HEALTH_SNAPSHOT", "NEW_SCREEN", "PY", "ROOT", "RUN_ID", "RUN_VAR", "SIZE",
    "SNAPSHOT", "T0",
    "TEST_PREFIX", "Client", "Collector", "Dashboard", "FixedAPI", "Headless", "Term",
    "alive", "assert_contiguous", "cli", "cli_env", "config", "copy_package", "free_port",
    "kill_engines", "kill_marked", "marked_pids", "one_error_line", "pids", "reap_zombie_children",
    "reconnect_config", "rows", "running", "settle", "settle_picture", "state_pids", "svc",
    "terminate", "tick_lines", "wait_for", "wait_pids", "wait_text", "wait_until",
    "write_cfg",
]
