"""Keys and values of supervisord, PM2 and compose: the loader says what to write here
(`config/peers.py`), and README's table is the module's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tui_supervisor.config import ConfigError, load_config
from tui_supervisor.config.peers import PEERS, markdown_table, peer_advice, restart_value
from tui_supervisor.config.services import SERVICE_KEYS, UNSUPPORTED_KEYS

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/test"}
README = Path(__file__).resolve().parents[1] / "README.md"


def errors(tmp_path: Path, *lines: str) -> list[str]:
    path = tmp_path / "supervisor.yaml"
    path.write_text("services:\n  web:\n" + "".join(f"    {line}\n" for line in lines))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    return [str(i).removeprefix(f"{path}:") for i in err.value.issues]


# (line in the service, the one error)
LOADED = {
    "autorestart": ("autorestart: true",
                    "4:5: services.web.autorestart: unknown key 'autorestart' (supervisord's"
                    " and PM2's autorestart) — use restart: always"),
    "autorestart-unexpected": (
        "autorestart: unexpected",
        "4:5: services.web.autorestart: unknown key 'autorestart' (supervisord's and PM2's"
        " autorestart) — use restart: on-failure"),
    "directory": ("directory: /x",
                  "4:5: services.web.directory: unknown key 'directory' (supervisord's"
                  " directory) — use cwd: '/x'"),
    "unless-stopped": ("restart: unless-stopped",
                       "4:14: services.web.restart: 'unless-stopped' is compose's — write"
                       " restart: always (a stop you ask for is never undone)"),
    "restart-no-bare": ("restart: no",
                        "4:14: services.web.restart: got false (YAML reads a bare no as"
                        " false) — write restart: never"),
    "restart-no-quoted": ("restart: 'no'",
                          "4:14: services.web.restart: 'no' is compose's — write restart:"
                          " never"),
    "on-failure-count": ("restart: on-failure:3",
                         "4:14: services.web.restart: 'on-failure:3' is compose's — write"
                         " restart: on-failure and crash_loop: {max_failures: 3, give_up:"
                         " true}"),
    "pm2-millis": ("kill_timeout: 1600",
                   "4:5: services.web.kill_timeout: unknown key 'kill_timeout' (PM2's"
                   " kill_timeout) — use stop.timeout: 1600ms"),
    "numprocs": ("numprocs: 2",
                 "4:5: services.web.numprocs: unknown key 'numprocs' (supervisord's"
                 " numprocs) — use replicas: 2"),
    "instances-max": ("instances: max",
                      "4:5: services.web.instances: unknown key 'instances' (PM2's instances)"
                      " — use replicas (copies web-0 ... web-(N-1); ${REPLICA} is the copy's"
                      " number (0-based) (NODE_APP_INSTANCE: the env var REPLICA))"),
    "not-supported": ("cron_restart: '0 0 * * *'",
                      "4:5: services.web.cron_restart: unknown key 'cron_restart' (PM2's"
                      " cron_restart) — not supported: run `tui-supervisor restart NAME`"
                      " from cron or a systemd timer"),
    "typo-keeps-fuzzy": ("restat: always",
                         "4:5: services.web: unknown key 'restat' (did you mean 'restart'?)"),
}


@pytest.mark.parametrize("case", LOADED, ids=list(LOADED))
def test_load_says_what_to_write(tmp_path: Path, case: str) -> None:
    line, expected = LOADED[case]
    assert errors(tmp_path, "command: [a]", line) == [expected]


def test_shell_variable_says_how_to_escape_it(tmp_path: Path) -> None:
    assert errors(tmp_path, "command: 'for f in *; do echo ${f}; done'", "shell: true") == [
        "3:14: services.web.command: undefined variable ${f} (write $${f} for a shell"
        " variable, or define f in env)"
    ]


def test_shell_variable_escaped_is_the_shell_s(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    path.write_text("services:\n  web:\n    command: 'echo $${f} ${HOME}'\n    shell: true\n")
    spec = load_config(path, environ=ENV).services["web"]
    assert spec.argv == ("/bin/sh", "-c", "echo ${f} /home/test")


def test_exec_command_keeps_the_plain_message(tmp_path: Path) -> None:
    assert errors(tmp_path, "command: [echo, '${f}']") == [
        "3:21: services.web.command[1]: undefined variable ${f}"
    ]


ADVICE = [  # (key, value, advice or None)
    ("autorestart", False, "(supervisord's and PM2's autorestart) — use restart: never"),
    ("autorestart", "weird", "(supervisord's and PM2's autorestart) — use restart: always"
     " | on-failure | never (true -> always, unexpected -> on-failure, false -> never)"),
    ("working_dir", "/srv", "(compose's working_dir) — use cwd: '/srv'"),
    ("environment", ["A=1"], "(supervisord's and compose's environment) — use env (a"
     " mapping: env: {KEY: value})"),
    ("startsecs", 5, "(supervisord's startsecs) — use start_time: 5s"),
    ("restart_delay", 250, "(PM2's restart_delay) — use backoff.initial: 250ms"),
    ("max_memory_restart", "300M", "(PM2's max_memory_restart) — use limits.memory: '300M'"),
    ("stopwaitsecs", "x", "(supervisord's stopwaitsecs) — use stop.timeout (then SIGKILL)"),
    ("command", "x", None),  # ours too
    ("restat", "x", None),   # no one's
]


@pytest.mark.parametrize(("key", "value", "expected"), ADVICE)
def test_peer_advice(key: str, value: object, expected: str | None) -> None:
    assert peer_advice(key, value) == expected


@pytest.mark.parametrize(("value", "has_advice"), [
    ("always", False), ("on-failure", False), ("never", False), ("sometimes", False),
    ("unless-stopped", True), ("no", True), (False, True), (True, True),
    ("on-failure:5", True),
])
def test_restart_value(value: object, has_advice: bool) -> None:
    assert (restart_value(value) is not None) == has_advice


def test_table_is_consistent_with_the_loader() -> None:
    keys = [p.key for p in PEERS]
    assert len(keys) == len(set(keys))
    for peer in PEERS:
        if peer.ours is not None:  # the key we point to exists (its first part)
            assert peer.ours.split(".")[0] in SERVICE_KEYS, peer
        if peer.key in SERVICE_KEYS:
            assert peer.ours == peer.key, peer  # never advise away from one of ours
        assert peer.key not in UNSUPPORTED_KEYS or peer.later, peer
        assert "|" not in peer.note, peer  # it goes into a Markdown table


def test_readme_table_is_the_module_s() -> None:
    text = README.read_text()
    m = re.search(r"<!-- peers:begin -->\n(.*?)\n<!-- peers:end -->", text, re.S)
    assert m, "README lacks the peers table markers"
    assert m.group(1) == markdown_table(), "README's table differs: paste markdown_table()"
