"""A log line's text as the log pane shows it: pure functions over the raw line a service
wrote. No widget state, no Textual (only Rich's `Text`), so the cleaning rules can be read
and tested on their own.

A service's output is untrusted terminal text: SGR colour sequences are kept (they become
styles), every other escape and control character is dropped, so a line can never move
the cursor, retitle the terminal or break the pane's layout.
"""

from __future__ import annotations

import re
import zlib

from rich.text import Text

_NEEDS_CLEANING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]*[0-~])?")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f-\x9f\u2028\u2029]")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
PALETTE = ("cyan", "magenta", "green", "yellow", "bright_blue", "bright_cyan",
           "bright_magenta", "bright_green", "orange1", "orchid", "spring_green2",
           "deep_sky_blue1", "gold1", "plum2", "aquamarine1", "light_salmon1")
"""Prefix colours in merged mode (no red: red marks stderr)."""


def sanitize(raw: str) -> str:
    """Keep SGR colour sequences, drop every other escape and control character.

    A carriage return keeps what a terminal would show (the text after the last one);
    tabs stay (expanded after parsing). Clean text is returned as is.
    """
    if _NEEDS_CLEANING.search(raw) is None:
        return raw
    if "\r" in raw:
        raw = raw.rstrip("\r\n")
        raw = raw[raw.rfind("\r") + 1:]
    if "\x1b" in raw:
        raw = _ESCAPE.sub(lambda m: m[0] if _SGR.fullmatch(m[0]) else "", raw)
    return _CONTROL.sub("", raw)


def plain_text(raw: str) -> str:
    """What a line shows, without any escape sequence (what search matches)."""
    s = sanitize(raw)
    return _SGR.sub("", s) if "\x1b" in s else s


def parse_line(raw: str) -> Text:
    """A log line as Rich `Text`: ANSI colours become styles, nothing else survives."""
    s = sanitize(raw)
    text = Text.from_ansi(s, no_wrap=True, end="") if "\x1b" in s else Text(s, end="")
    if "\t" in text.plain:
        text.expand_tabs(8)
    return text


def name_colour(name: str) -> str:
    """A stable colour per service name (same name, same colour, every run)."""
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]
