"""Small pure parsers for config values: durations, sizes, signals, `${VAR}`, env files
and the typed converters the loader applies to YAML scalars.

Every parser raises `ValueError` with a short, human message on bad input.
"""

from __future__ import annotations

import difflib
import math
import re
import signal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?b?|b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_VAR = re.compile(r"\$(\$|\{([^}]*)(\}?))")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)")


SHOWN_CHARS = 60
"""A longer string is cut in messages (a message stays one short line)."""


def show(value: object) -> str:
    """Render a YAML value for an error message: `'abc'`, `5`, `true`, `null`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > SHOWN_CHARS:
            return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 20 else f"{text[:12]}... ({len(text)} digits)"
    if isinstance(value, float):
        return str(value)
    return f"a {type(value).__name__}"


def show_duration(seconds: float) -> str:
    """`250ms`, `2s`, `1m`, `24h`: a bound as the config would write it."""
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def show_size(size: int) -> str:
    """`16KB`, `1TB`: a bound as the config would write it (K = 1024)."""
    for unit in ("TB", "GB", "MB", "KB"):
        scale = _SIZE_UNITS[unit[0].lower()]
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def in_range(conv: Callable[[Any], float], lo: float, hi: float,
             shown: Callable[[Any], str] = str, *, off: bool = False) -> Callable[[Any], Any]:
    """`conv`, then `lo <= value <= hi` (or 0, when `off`: the value that turns it off);
    the message states the range as the config would write it."""
    def conv_in(value: Any) -> Any:
        result = conv(value)
        if not lo <= result <= hi and not (off and result == 0):
            allowed = f"between {shown(lo)} and {shown(hi)}" + (" (or 0: off)" if off else "")
            raise ValueError(f"must be {allowed}, got {show(value)}")
        return result

    return conv_in


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float(value: float, bad: str) -> float:
    """float(value), a ValueError with message `bad` for an int too big for a float."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(bad) from None


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string like `250ms`, `2s`, `1.5m`, `1h30m`, `0`."""
    bad = f"expected a duration like 250ms, 2s or 1m, got {show(value)}"
    if _is_number(value):
        seconds = _float(value, bad)  # type: ignore[arg-type]
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif text and "".join(m.group(0) for m in _DURATION_PART.finditer(text)) == text:
            parts = _DURATION_PART.findall(text)
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
        elif text.startswith("-"):
            raise ValueError(f"must not be negative, got {show(value)}")
        else:
            raise ValueError(bad)
    else:
        raise ValueError(bad)
    if not math.isfinite(seconds):
        raise ValueError(bad)
    if seconds < 0:
        raise ValueError(f"must not be negative, got {show(value)}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from an int or a string like `100B`, `512KB`, `1.5MB`, `1GB` (K = 1024)."""
    bad = f"expected a size like 512KB, 10MB or 1GB, got {show(value)}"
    if _is_number(value):
        number = _float(value, bad)  # type: ignore[arg-type]
        if not math.isfinite(number) or number != int(number):
            raise ValueError(bad)
        size = int(number)
    elif isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        unit = (m.group(2) or "").lower()
        number = float(m.group(1)) * _SIZE_UNITS[unit[:1]]
        if not math.isfinite(number):
            raise ValueError(bad)
        size = int(number)
    else:
        if isinstance(value, str) and value.strip().startswith("-"):
            raise ValueError(f"must not be negative, got {show(value)}")
        raise ValueError(bad)
    if size < 0:
        raise ValueError(f"must not be negative, got {show(value)}")
    return size


def parse_signal(value: object) -> int:
    """Signal number from `TERM`, `SIGTERM`, `term`, `15` or 15."""
    bad = f"expected a signal like TERM, SIGINT or 15, got {show(value)}"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if _is_number(value) and isinstance(value, int):
        try:
            return int(signal.Signals(value))
        except ValueError:
            raise ValueError(bad) from None
    if not isinstance(value, str):
        raise ValueError(bad)
    name = value.strip().upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIG_") or not hasattr(signal.Signals, name):
        raise ValueError(bad)
    return int(signal.Signals[name])


class Undefined(ValueError):
    """`${NAME}` with NAME not in the environment (and no `:-default`)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"undefined variable ${{{name}}}" + (
            " (defined only in a service with replicas:)" if name == "REPLICA" else ""))
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Replace `${VAR}` (and `${VAR:-default}`) from `env`; `$$` is a literal `$`.

    A `$` followed by anything else is kept as is.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group(1) == "$":
            return "$"
        inner, closed = m.group(2), m.group(3)
        if not closed:
            raise ValueError(f"unclosed '${{' in {show(text)}")
        name, sep, default = inner.partition(":-")
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid variable name {show(name)} in {show(text)}")
        if name in env and (env[name] or not sep):
            return env[name]
        if sep:
            return default
        raise Undefined(name)

    return _VAR.sub(repl, text)


def parse_env_lines(text: str) -> dict[str, str]:
    """Parse an env file: `KEY=VALUE` lines, `export KEY=VALUE`, blanks and `#` comments.

    Matching single or double quotes around a value are stripped. Raises ValueError naming
    the line number of the first malformed line.
    """
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\x00" in line:
            raise ValueError(f"line {number}: holds a NUL character")
        m = _ENV_LINE.fullmatch(line)
        if not m:
            raise ValueError(f"line {number}: expected KEY=VALUE, got {show(line)}")
        key, val = m.group(1), m.group(2).strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            val = val[1:-1]
        result[key] = val
    return result


def suggest(word: str, options: Iterable[str]) -> str:
    """` (did you mean 'x'?)` or an empty string."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {show(value)}")
    return value


def to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {show(value)}")
    return value


def to_int(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    def conv(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {show(value)}")
        check_range(value, lo, hi)
        return value

    return conv


def to_number(lo: float, hi: float | None = None) -> Callable[[Any], float]:
    def conv(value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
            raise ValueError(f"expected a number, got {show(value)}")
        check_range(value, lo, hi)
        return _float(value, f"expected a number, got {show(value)}")

    return conv


def check_range(value: float, lo: float, hi: float | None) -> None:
    if hi is None and value < lo:
        raise ValueError(f"must be at least {lo}, got {show(value)}")
    if hi is not None and not lo <= value <= hi:
        raise ValueError(f"must be between {lo} and {hi}, got {show(value)}")


def to_choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(value: Any) -> str:
        if value not in options:
            hint = suggest(value, options) if isinstance(value, str) else ""
            raise ValueError(f"must be one of {', '.join(options)}, got {show(value)}{hint}")
        return value

    return conv


def to_listen(value: Any) -> str | None:
    if value is None:
        return None
    host, sep, port = to_str(value).rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit() and len(port) <= 5):
        raise ValueError(f"expected host:port like 127.0.0.1:9464, got {show(value)}")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    return value
