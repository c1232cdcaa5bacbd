"""A config file to a tree of YAML nodes, bounded: whatever the file holds, reading it
takes bounded time and memory, and every refusal is one `ConfigIssue` at file:line:col
(with the key path where one is known), never a traceback.

The bounds (README, "Config"): the file's size, its characters, how deep it nests (also
through aliases), how much its aliases and merge keys expand, and its tags (standard ones
only: no `!!python/object`). They are checked as the nodes are composed (`Bounded`, over
libyaml's parser when it is there), before any value is constructed.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader as TextReader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from tui_supervisor.config.reader import ConfigError, ConfigIssue, join

try:
    from yaml._yaml import CParser as _CParser

    _LIBYAML: Any = _CParser
except ImportError:  # PyYAML built without libyaml
    _LIBYAML = None

MAX_FILE_BYTES = 4 * 1024 * 1024
"""A config file (and an env_file) may be at most this big: 40 times a config of a
thousand services, and small enough to read in a few seconds with the pure parser."""
MAX_DEPTH = 64
"""Collections nested in each other (through aliases too). A config needs 5; the YAML
composer and the merge-key walk recurse once per level."""
MAX_ALIAS_VALUES = 100_000
"""Values that aliases (and so merge keys) may add to the document, in all: each use of
`*x` counts every value under `&x`. Enough for a shared block of 100 values merged into
1000 services; a "billion laughs" file stops here instead of growing exponentially."""
PURE_REPARSE_BYTES = 512 * 1024
"""A file libyaml refuses is parsed again by the pure-Python parser, whose messages are
better, only up to this size (it is 10 times slower); a bigger one gets libyaml's."""

_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map"))
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What YAML does not allow in a file (control characters, NUL, surrogates)."""


def fail(file: str, line: int, col: int, message: str, key_path: str = "") -> ConfigError:
    return ConfigError([ConfigIssue(file, line, col, key_path, message)])


class TooBig(Exception):
    """A file over MAX_FILE_BYTES."""

    def __str__(self) -> str:
        return f"larger than {MAX_FILE_BYTES // 1024 // 1024} MiB, the limit for a config file"


def read_capped(path: pathlib.Path) -> bytes:
    """The bytes of `path`, reading at most MAX_FILE_BYTES + 1 whatever the file is
    (/dev/zero included). Raises OSError (ValueError for a NUL in the path), TooBig."""
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise TooBig()
    return data


def decode(data: bytes, file: str) -> str:
    """UTF-8 text (a BOM allowed) with only the characters YAML allows, or ConfigError
    at the first bad byte or character."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = f"0x{data[e.start]:02x}"
        raise fail(file, line, col, f"not valid UTF-8 (byte {bad}); save it as UTF-8") from None
    m = _NON_PRINTABLE.search(text)
    if m:
        pos = m.start()
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        code = ord(m.group(0))
        name = "a NUL byte" if code == 0 else f"control character U+{code:04X}"
        raise fail(file, line, col, f"{name} is not allowed in a YAML file (remove it, or "
                   "write it as an escape in a double-quoted string)")
    return text


Path = tuple[Any, str | int] | None
"""Where a node is, built as it is composed and worded only for an error: None for the
root, else (the parent's Path, a key or an index)."""


def key_path(path: Path) -> str:
    """`services.web.command[2]` from a Path (shortened past 80 characters)."""
    parts: list[str | int] = []
    while path is not None:
        path, part = path
        parts.append(part)
    text = ""
    for part in reversed(parts):
        text = f"{text}[{part}]" if isinstance(part, int) else join(text, part)
    return text if len(text) <= 80 else text[:77] + "..."


def _label(key: Node) -> str:
    """A mapping key as a key-path element."""
    if not isinstance(key, ScalarNode):
        return "?"
    return key.value if len(key.value) <= 40 else key.value[:37] + "..."


def _show_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


class Bounded:
    """A YAML composer (as `yaml.composer.Composer`) that refuses, at the node that breaks
    one, nesting over MAX_DEPTH, aliases adding over MAX_ALIAS_VALUES values, an alias to
    the node it is in, and non-standard tags. Mixed with a parser (libyaml's or pure)."""

    file: str
    get_event: Any
    peek_event: Any
    check_event: Any
    resolve: Any

    def _init_bounded(self, file: str) -> None:
        self.file = file
        self.anchors: dict[str, tuple[Node, int, int]] = {}
        """anchor -> (node, values under it, collections nested in it)."""
        self.open_anchors: dict[str, Any] = {}
        """Anchors of the collections being composed -> where they are (a Mark)."""
        self.alias_values = 0

    def refuse(self, event: Any, path: Path, message: str) -> ConfigError:
        mark = event.start_mark
        return fail(self.file, mark.line + 1, mark.column + 1, message, key_path(path))

    def get_single_node(self) -> Node | None:
        self.get_event()  # stream start
        document = None
        if not self.check_event(StreamEndEvent):
            self.get_event()  # document start
            document, _, _ = self.compose_node(None, 0)
            self.get_event()  # document end
            self.anchors = {}
        if not self.check_event(StreamEndEvent):
            event = self.get_event()
            raise ComposerError("expected a single document in the stream",
                                document.start_mark if document else None,
                                "but found another document", event.start_mark)
        self.get_event()
        return document

    def compose_node(self, path: Path, depth: int) -> tuple[Node, int, int]:
        """(node, values in it, collections nested in it); `depth` collections enclose it.
        (Hot: one event peeked, no string built unless the node is refused.)"""
        event: Any = self.peek_event()
        kind = type(event)
        if kind is AliasEvent:
            return self.compose_alias(path, depth)
        anchor, tag = event.anchor, event.tag
        if anchor is not None and (anchor in self.anchors or anchor in self.open_anchors):
            first = (self.open_anchors[anchor] if anchor in self.open_anchors
                     else self.anchors[anchor][0].start_mark)
            raise ComposerError(f"found duplicate anchor {anchor!r}; first occurrence",
                                first, "second occurrence", event.start_mark)
        if tag is not None and tag != "!" and tag not in _STANDARD_TAGS:
            raise self.refuse(event, path, f"the YAML tag {_show_tag(tag)} is not allowed "
                              "(only !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)")
        node: Node
        if kind is ScalarEvent:
            self.get_event()
            if tag is None or tag == "!":
                tag = self.resolve(ScalarNode, event.value, event.implicit)
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark,
                              style=event.style)
            size, height = 1, 0
        else:
            if depth >= MAX_DEPTH:
                raise self.refuse(event, path, f"nested more than {MAX_DEPTH} levels deep")
            if anchor is not None:
                self.open_anchors[anchor] = event.start_mark
            if kind is SequenceStartEvent:
                node, size, height = self.compose_sequence(path, depth + 1)
            else:
                node, size, height = self.compose_mapping(path, depth + 1)
            if anchor is not None:
                del self.open_anchors[anchor]
        if anchor is not None:
            self.anchors[anchor] = (node, size, height)
        return node, size, height

    def compose_alias(self, path: Path, depth: int) -> tuple[Node, int, int]:
        event = self.get_event()
        anchor = event.anchor
        if anchor in self.open_anchors:
            raise self.refuse(event, path, f"*{anchor} refers to a node that contains it "
                              f"(&{anchor} on line {self.open_anchors[anchor].line + 1})")
        if anchor not in self.anchors:
            raise ComposerError(None, None, f"found undefined alias {anchor!r}",
                                event.start_mark)
        node, size, height = self.anchors[anchor]
        self.alias_values += size
        if self.alias_values > MAX_ALIAS_VALUES:
            raise self.refuse(event, path, f"aliases expand to more than {MAX_ALIAS_VALUES} "
                              "values in all (an alias bomb?)")
        if depth + height > MAX_DEPTH:
            raise self.refuse(event, path, f"nested more than {MAX_DEPTH} levels deep "
                              f"(through *{anchor})")
        return node, size, height

    def compose_sequence(self, path: Path, depth: int) -> tuple[Node, int, int]:
        """A sequence whose items are at `depth`."""
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(SequenceNode, None, start.implicit)
        items: list[Node] = []
        node = SequenceNode(tag, items, start.start_mark, None, flow_style=start.flow_style)
        size, height = 1, 1
        compose, check = self.compose_node, self.check_event
        while not check(SequenceEndEvent):
            item, n, h = compose((path, len(items)), depth)
            items.append(item)
            size += n
            if h >= height:
                height = h + 1
        node.end_mark = self.get_event().end_mark
        return node, size, height

    def compose_mapping(self, path: Path, depth: int) -> tuple[Node, int, int]:
        """A mapping whose keys and values are at `depth`."""
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(MappingNode, None, start.implicit)
        pairs: list[tuple[Node, Node]] = []
        node = MappingNode(tag, pairs, start.start_mark, None, flow_style=start.flow_style)
        size, height = 1, 1
        compose, check = self.compose_node, self.check_event
        while not check(MappingEndEvent):
            key, n, h = compose(path, depth)
            value, m, g = compose((path, _label(key)), depth)
            pairs.append((key, value))
            size += n + m
            if max(h, g) >= height:
                height = max(h, g) + 1
        node.end_mark = self.get_event().end_mark
        return node, size, height


class PureLoader(Bounded, TextReader, Scanner, Parser, SafeConstructor, Resolver):
    """The pure-Python parser under the bounded composer."""

    def __init__(self, text: str, file: str) -> None:
        TextReader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._init_bounded(file)


if _LIBYAML is not None:

    class FastLoader(Bounded, _LIBYAML, SafeConstructor, Resolver):
        """libyaml's parser under the bounded composer (10x faster than the pure one)."""

        def __init__(self, text: str, file: str) -> None:
            _LIBYAML.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._init_bounded(file)


def fast_loader(text: str, file: str) -> Any:
    """A FastLoader, or None without libyaml (PyYAML then has no CSafeLoader)."""
    if _LIBYAML is None or not hasattr(yaml, "CSafeLoader"):
        return None
    return FastLoader(text, file)


def compose(text: str, file: str) -> tuple[Any, Node | None]:
    """(loader, root node; None for an empty file) of checked text, or ConfigError. The
    loader constructs scalars (`construct_object`); the caller disposes of it."""
    loader = fast_loader(text, file)
    if loader is not None:
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError as e:  # the pure parser words it best, if affordable
            loader.dispose()
            if len(text) > PURE_REPARSE_BYTES:
                raise worded(e, text, file) from None
        except BaseException:
            loader.dispose()
            raise
    loader = PureLoader(text, file)
    try:
        return loader, loader.get_single_node()
    except yaml.YAMLError as e:
        loader.dispose()
        raise worded(e, text, file) from None
    except BaseException:
        loader.dispose()
        raise


def worded(e: yaml.YAMLError, text: str, file: str) -> ConfigError:
    """A parser's error as one issue with a clean message (tabs in indentation named)."""
    if not isinstance(e, yaml.MarkedYAMLError):
        return fail(file, 1, 1, f"invalid YAML: {e}")
    tabs = [
        ConfigIssue(file, n, len(m.group(0)), "", "tab in indentation; YAML needs spaces")
        for n, line in enumerate(text.splitlines(), start=1)
        if (m := re.match(r"[ ]*\t", line)) and line.strip()
    ]
    if tabs:
        return ConfigError(tabs)
    mark = e.problem_mark or e.context_mark
    message = f"invalid YAML: {(e.problem or e.context or '').removeprefix('but ')}"
    ctx = e.context_mark
    if e.context and e.problem and ctx and mark and (ctx.line, ctx.column) != (
            mark.line, mark.column):
        message += f" ({e.context} at {ctx.line + 1}:{ctx.column + 1})"
    if "<block" in message:
        message += "; check the indentation"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return fail(file, line, col, message)
