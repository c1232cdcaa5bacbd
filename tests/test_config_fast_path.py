"""libyaml (CSafeLoader) parses big configs fast; the result and every message must be the
same as with the pure-Python parser."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tui_supervisor.config import ConfigError, load_config

GOOD = "services:\n" + "".join(
    f"  s{i}:\n    command: [/bin/sleep, '{i}']\n    env: {{N: 'ü{i}'}}\n"
    "    stop: {timeout: 2s}\n" for i in range(50))
BAD = ("services:\n  web: {command: [x], env: {É: 'é'}, restart: bogus}\n"
       "  b: {command: [y], stop: {signal: NOPE}}\n")


def load_both(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    out: list[object] = []
    for pure in (False, True):
        with monkeypatch.context() as m:
            if pure:
                m.delattr(yaml, "CSafeLoader", raising=False)
            try:
                out.append(load_config(p, environ={"HOME": "/h"}))
            except ConfigError as e:
                out.append([str(i) for i in e.issues])
    return out


def test_fast_and_pure_parsers_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, pure = load_both(tmp_path, GOOD, monkeypatch)
    assert fast == pure and len(fast.services) == 50  # type: ignore[attr-defined]
    fast, pure = load_both(tmp_path, BAD, monkeypatch)
    assert fast == pure
    assert fast[0].endswith(":2:47: services.web.restart: must be one of always, on-failure, "
                            "never, got 'bogus'")
