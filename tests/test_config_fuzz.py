"""Fuzzing the loader (hypothesis): malformed config files made from a valid one (random
bytes inserted, truncation, wrong types at random keys, deep nesting, aliases, huge
numbers, control characters, invalid UTF-8) each load or are refused by ConfigError,
every issue one line at the file, in bounded time; never another exception.

Quick by default (200 files in-process, 5 through `tui-supervisor check`); the full run:
`TUISUP_FUZZ_EXAMPLES=2000 pytest tests/test_config_fuzz.py` (and a twentieth of that
through the CLI)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from support import PY, cli_env

from tui_supervisor.config import Config, ConfigError, load_config
from tui_supervisor.config.reader import MAX_ISSUES

EXAMPLES = int(os.environ.get("TUISUP_FUZZ_EXAMPLES", "200"))
CLI_EXAMPLES = max(5, EXAMPLES // 20)
PER_FILE = 20.0
"""Seconds one file may take (the biggest, a 4 MiB file, takes about 2): generous, for a
loaded machine; without the bounds an alias bomb took minutes."""
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/fuzz", "PORT": "8000"}

BASE = """\
version: 1
settings:
  sample_interval: 1s
  watch_config: false
  metrics_listen: 127.0.0.1:9464
services:
  web: &web
    command: [python3, -m, http.server, "${PORT:-8000}"]
    cwd: .
    env: {PORT: "8000", DEBUG: 1}
    autostart: true
    start_time: 1s
    restart: always
    success_codes: [0, 2]
    backoff: {initial: 100ms, factor: 2, max: 30s, jitter: 0.1, reset_after: 30s}
    crash_loop: {max_failures: 5, window: 60s}
    stop: {signal: TERM, timeout: 10s}
    log: {max_bytes: 10MB, backups: 5, ring_lines: 1000}
  worker:
    <<: *web
    command: "sleep 100"
    restart: on-failure
  shell:
    command: echo hi && sleep 1
    shell: true
    stop:
      signal: INT
      timeout: 2s
"""

HOSTILE_VALUES = [
    "[" * 300 + "]" * 300, "{a: " * 80 + "1" + "}" * 80, "[" * 5000, "*undefined", "&x [*x]",
    "!!python/object:os.system {}", "!!python/object/apply:os.system [id]", "!!binary aGk=",
    "!foo bar", "!!set {a}", "9" * 5000, "9" * 400, "-" + "9" * 30, "1.0e+400", "-1.0e+400",
    "-1", "0", "''", "null", "~", "[]", "{}", "[1, [2]]", "{x: 1}", "yes", "99999999h",
    "1" * 20 + "TB", '"\\0"', '"\\x01"', '"a\\nb"', "'", '"', "&a", "*", "? [a]\n: b", "- x",
    "|\n  text", ">-", "%TAG ! x", "---", "...", "2024-13-45", "2024-01-01", "0x" + "f" * 100,
    "0o777", ".inf", ".nan", "'" + "x" * 10000 + "'", "/dev/zero", "${", "${X:-", "$$",
    "[/dev/zero]", "1e3", "1_000", "0b101", "+12", "12:30:00", "<<", "=", "\\",
]
ODD_BYTES = [b"\x00", b"\x01", b"\x1b", b"\x7f", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\t",
             b"\r", b"\xc2\x85", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\xf4\x90\x80\x80", b"\n"]


def alias_bomb(levels: int) -> bytes:
    lines = [f"  b{i}: &b{i} {{<<: [*b{i - 1}, *b{i - 1}], k{i}: v}}" for i in
             range(1, levels + 1)]
    return ("  b0: &b0 {command: [x]}\n" + "\n".join(lines) + "\n").encode()


Draw = Callable[[st.SearchStrategy[Any]], Any]


def insert_bytes(draw: Draw, data: bytes) -> bytes:
    at = draw(st.integers(0, len(data)))
    junk = draw(st.one_of(st.binary(min_size=1, max_size=16),
                          st.lists(st.sampled_from(ODD_BYTES), min_size=1, max_size=3)
                          .map(b"".join)))
    return data[:at] + junk + data[at:]


def truncate(draw: Draw, data: bytes) -> bytes:
    return data[:draw(st.integers(0, len(data)))]


def cut_slice(draw: Draw, data: bytes) -> bytes:
    a = draw(st.integers(0, len(data)))
    return data[:a] + data[a + draw(st.integers(1, 40)):]


def wrong_value(draw: Draw, data: bytes) -> bytes:
    """The value at a random key replaced: a wrong type, a huge number, a deep nest..."""
    lines = data.split(b"\n")
    keyed = [i for i, line in enumerate(lines) if re.match(rb"\s*[^#\s][^:]*:", line)]
    if not keyed:
        return data
    i = draw(st.sampled_from(keyed))
    key = lines[i].split(b":", 1)[0]
    value = draw(st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=30)))
    lines[i] = key + b": " + value.encode("utf-8", "surrogatepass")
    return b"\n".join(lines)


def duplicate_line(draw: Draw, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i = draw(st.integers(0, len(lines) - 1))
    return b"\n".join([*lines[:i], lines[i], *lines[i:]])


def reindent(draw: Draw, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i = draw(st.integers(0, len(lines) - 1))
    lines[i] = draw(st.sampled_from([b"", b" ", b"\t", b"    ", b"- "])) + lines[i].lstrip()
    return b"\n".join(lines)


def add_bomb(draw: Draw, data: bytes) -> bytes:
    at = data.find(b"services:\n")
    bomb = alias_bomb(draw(st.integers(10, 40)))
    return data + bomb if at < 0 else data[:at + 10] + bomb + data[at + 10:]


MUTATIONS = [insert_bytes, truncate, cut_slice, wrong_value, wrong_value, duplicate_line,
             reindent, add_bomb]


@st.composite
def hostile_files(draw: Draw) -> bytes:
    data = BASE.encode()
    for _ in range(draw(st.integers(1, 3))):
        data = draw(st.sampled_from(MUTATIONS))(draw, data)
    return data


def load(data: bytes) -> tuple[Path, Config | ConfigError, float]:
    """(path, what load_config gave, seconds): a Config or a ConfigError; any other
    exception goes up (and fails the test)."""
    with tempfile.NamedTemporaryFile(suffix=".yaml", delete=False) as f:
        f.write(data)
    path = Path(f.name)
    began = time.monotonic()
    try:
        got: Config | ConfigError = load_config(path, environ=ENV)
    except ConfigError as e:
        got = e
    finally:
        took = time.monotonic() - began
        path.unlink()
    return path, got, took


def assert_reported(path: Path, got: Config | ConfigError) -> None:
    event("loaded" if isinstance(got, Config) else "refused")
    if isinstance(got, ConfigError):
        lines = [str(i) for i in got.issues]
        assert 1 <= len(lines) <= MAX_ISSUES + 1
        for line in lines:
            assert line.startswith(f"{path}:") and "\n" not in line and "\r" not in line, line
            assert len(line) < 2000, line[:300]


BIG = BASE.encode() + b"# " + b"x" * (20 * 1024 * 1024) + b"\n"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile_files())
@example(BIG)
@example(BASE.encode() + alias_bomb(40))
@example(BASE.encode().replace(b"[0, 2]", b"[" * 5000 + b"]" * 5000))
@example(BASE.encode().replace(b"backups: 5", b"backups: 1000000000000"))
@example(BASE.encode().replace(b"sleep 100", b"sleep \x00"))
@example(b"\xff\xfe" + BASE.encode("utf-16-le"))
def test_every_malformed_file_loads_or_is_one_line_per_issue(data: bytes) -> None:
    path, got, took = load(data)
    assert_reported(path, got)
    assert took < PER_FILE, f"{took:.1f}s for a {len(data)}-byte file"


@settings(max_examples=CLI_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile_files())
@example(BASE.encode() + alias_bomb(40))
def test_check_says_ok_or_one_line_per_issue(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "c.yaml")
        path.write_bytes(data)
        r = subprocess.run([PY, "-m", "tui_supervisor", "check", "-c", str(path)],
                           capture_output=True, text=True, env=cli_env(Path(tmp)), cwd=tmp,
                           timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    if r.returncode == 0:
        assert r.stdout.startswith(f"{path}: ok"), r.stdout
    else:
        assert r.returncode == 1, (r.returncode, r.stderr)
        lines = r.stderr.splitlines()
        assert 1 <= len(lines) <= MAX_ISSUES + 1, r.stderr
        assert all(line.startswith(f"{path}:") for line in lines), r.stderr
