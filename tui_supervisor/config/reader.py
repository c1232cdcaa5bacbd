"""Position-keeping access to composed YAML nodes, and the error types of the loader."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tui_supervisor.config.peers import LATER
from tui_supervisor.config.units import (
    interpolate,
    show,
    suggest,
    to_str,
)

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"

Items = dict[str, tuple[Node, Node]]
"""Keys of a YAML mapping -> (key node, value node), in file order."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file. `line`/`col` are 1-based (0 = the whole file)."""

    file: str
    line: int
    col: int
    key_path: str
    message: str

    def __str__(self) -> str:
        where = self.file if not self.line else (
            f"{self.file}:{self.line}:{self.col}" if self.col else f"{self.file}:{self.line}")
        path = f" {self.key_path}:" if self.key_path else ""
        return one_line(f"{where}:{path} {self.message}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters escaped (`\\n`, `\\x01`):
    a key or a value quoted in a message cannot split it."""
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], text)


MAX_ISSUES = 20
"""Issues kept in a ConfigError: the first ones (by line) and a count of the rest."""


class ConfigError(Exception):
    """The config could not be loaded; `issues` lists the problems found, by line (the
    first MAX_ISSUES, then one saying how many more there are)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        ordered = sorted(issues, key=lambda i: (i.line, i.col))
        self.issues = ordered[:MAX_ISSUES]
        if len(ordered) > MAX_ISSUES:
            more = len(ordered) - MAX_ISSUES
            self.issues.append(ConfigIssue(ordered[0].file, 0, 0, "",
                                           f"... and {more} more problems"))
        super().__init__("\n".join(str(i) for i in self.issues))


def join(path: str, key: str) -> str:
    """Key path of `key` under `path` (`services.web` + `cwd`)."""
    return f"{path}.{key}" if path else key


class Reader:
    """Walks composed YAML nodes, converting values and collecting issues."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.issues: list[ConfigIssue] = []

    def add(self, node: Node | None, path: str, message: str) -> None:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.issues.append(ConfigIssue(self.file, line, col, path, message))

    def plain(self, node: Node) -> Any:
        """The Python value of a scalar node; `[]`/`{}` stand in for lists/mappings."""
        if isinstance(node, SequenceNode):
            return []
        if isinstance(node, MappingNode):
            return {}
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError):  # ValueError: an int of over 4300 digits, a
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")  # date like 2024-13-45
            raise ValueError(f"cannot read {show(node.value)} as {tag}") from None
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"{show(value)} holds a NUL character (\\0), which no "
                             "command, path or environment can hold")
        return value

    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _NULL_TAG

    def mapping(self, node: Node, path: str, *, null_ok: bool = True) -> Items | None:
        """Items of a mapping node (merge keys applied, duplicates reported), else None.
        (A mapping cannot merge itself: the composer refuses an alias inside its anchor.)"""
        if null_ok and self.is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            self.add(node, path, f"expected a mapping, got {self.describe(node)}")
            return None
        items: Items = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    merged = self.mapping(src, path, null_ok=False) or {}
                    for key, pair in merged.items():
                        items.setdefault(key, pair)
        inherited = set(items)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self.add(key_node, path, "keys must be plain strings")
                continue
            key = key_node.value
            if key in items and key not in inherited:
                first = items[key][0].start_mark.line + 1
                self.add(key_node, path, f"duplicate key {key!r} (first defined on line {first})")
                continue
            inherited.discard(key)
            items[key] = (key_node, value_node)
        return items

    def describe(self, node: Node) -> str:
        try:
            return show(self.plain(node))
        except ValueError:
            return f"a value tagged {node.tag!r}"

    def check_keys(
        self,
        items: Items,
        allowed: Mapping[str, object] | set[str],
        path: str,
        unsupported: frozenset[str] = frozenset(),
        advice: Callable[[str, Any], str | None] | None = None,
    ) -> None:
        """Report keys not in `allowed`: `unsupported` ones as not supported yet; one
        `advice(key, value)` knows (another tool's key) with its advice, at the key's
        path; any other with a did-you-mean."""
        for key, (key_node, value_node) in items.items():
            if key in unsupported:
                self.add(key_node, join(path, key), LATER)
            elif key not in allowed:
                said = advice(key, self.value_or_none(value_node)) if advice else None
                if said:
                    self.add(key_node, join(path, key), f"unknown key {key!r} {said}")
                    continue
                hint = suggest(key, [*allowed, *unsupported])
                self.add(key_node, path, f"unknown key {key!r}{hint}")

    def value_or_none(self, node: Node) -> Any:
        """`plain(node)`, or None when it cannot be read (a bad tag, a huge int)."""
        try:
            return self.plain(node)
        except ValueError:
            return None

    def get(
        self, items: Items, key: str, path: str, conv: Callable[[Any], Any], default: Any
    ) -> Any:
        """Convert `items[key]` with `conv` (which raises ValueError); default if absent/bad."""
        if key not in items:
            return default
        node = items[key][1]
        try:
            return conv(self.plain(node))
        except ValueError as e:
            self.add(node, join(path, key), str(e))
            return default

    def section(
        self, items: Items, key: str, path: str, default: Any, convs: dict[str, Any]
    ) -> Any:
        """A nested spec (backoff, stop, ...): `default` with the given fields replaced."""
        if key not in items:
            return default
        sub = join(path, key)
        found = self.mapping(items[key][1], sub)
        if found is None:
            return default
        self.check_keys(found, convs, sub)
        values = {k: self.get(found, k, sub, convs[k], getattr(default, k)) for k in convs}
        return replace(default, **values)

    def text(self, items: Items, key: str, path: str, env: Mapping[str, str]) -> str | None:
        """An interpolated string value, or None when absent, null or bad."""
        if key not in items or self.is_null(items[key][1]):
            return None
        raw = self.get(items, key, path, to_str, None)
        if raw is None:
            return None
        try:
            return interpolate(raw, env)
        except ValueError as e:
            self.add(items[key][1], join(path, key), str(e))
            return None


def expand_path(value: str, base: Path, environ: Mapping[str, str]) -> Path:
    """`~` expanded (HOME from `environ`), relative to `base`, normalized; no FS access."""
    if value == "~" or value.startswith("~/"):
        home = environ.get("HOME") or os.path.expanduser("~")
        value = home + value[1:]
    else:
        value = os.path.expanduser(value)
    return Path(os.path.normpath(base / value))
