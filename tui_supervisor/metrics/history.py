"""Pure building blocks of the resource sampler: fixed-length rings of samples (history
for graphs), a sliding window of event-loop lags, and a counter summed over sources that
can reset. No I/O, no clock of their own: the caller passes every time, so tests assert
exact numbers."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

Value = float | int | None
"""A sample; None is a gap (nothing to sample then, or no sample taken)."""

DEFAULT_POINTS = 600
"""10 minutes at one sample a second."""


class Ring:
    """The last `maxlen` values of one series, oldest first."""

    __slots__ = ("values",)

    def __init__(self, maxlen: int = DEFAULT_POINTS, values: Iterable[Value] = ()) -> None:
        self.values: deque[Value] = deque(values, maxlen=maxlen)

    @property
    def maxlen(self) -> int:
        return self.values.maxlen or 0

    def append(self, v: Value) -> None:
        self.values.append(v)

    def to_list(self) -> list[Value]:
        return list(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"maxlen": self.maxlen, "values": self.to_list()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ring:
        return cls(int(d["maxlen"]), d["values"])


class History:
    """Aligned rings, one per series, sampled every `interval` seconds: value i of every
    series belongs to the same tick, and the last one to `t_last`. A tick that comes more
    than 1.5 intervals after the previous one first pads every series with a None per
    missed tick (a handoff, a stalled loop); a series first seen late is padded at its
    start, one missing from a tick gets None."""

    def __init__(self, interval: float, maxlen: int = DEFAULT_POINTS) -> None:
        self.interval = interval
        self.maxlen = maxlen
        self.series: dict[str, Ring] = {}
        self.t_last: float | None = None
        self.ticks = 0
        """Ticks recorded (gaps included), for padding series that start late."""

    def record(self, t: float, values: Mapping[str, Value]) -> None:
        if self.t_last is not None and self.interval > 0:
            missed = round((t - self.t_last) / self.interval) - 1
            for _ in range(max(0, min(missed, self.maxlen))):
                self._push({})
        for name in values:
            if name not in self.series:
                self.series[name] = Ring(self.maxlen, [None] * min(self.ticks, self.maxlen))
        self._push(values)
        self.t_last = t

    def _push(self, values: Mapping[str, Value]) -> None:
        for name, ring in self.series.items():
            ring.append(values.get(name))
        self.ticks += 1

    def get(self, names: Iterable[str] | None = None) -> dict[str, list[Value]]:
        """Series as lists, oldest first (all of them by default). KeyError if unknown."""
        wanted = list(self.series) if names is None else list(names)
        return {n: self.series[n].to_list() for n in wanted}

    def to_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "maxlen": self.maxlen, "t_last": self.t_last,
                "ticks": self.ticks,
                "series": {n: r.to_list() for n, r in self.series.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        h = cls(float(d["interval"]), int(d["maxlen"]))
        h.t_last = d["t_last"]
        h.ticks = int(d["ticks"])
        h.series = {n: Ring(h.maxlen, v) for n, v in d["series"].items()}
        return h


class Downsampler:
    """Folds every `factor` ticks of values into one, for a coarser ring: the maximum of
    each series over the ticks (a spike is never averaged away), the minimum for the
    series in `lows` (readiness: one unready tick shows); None when a series had no
    value in them."""

    def __init__(self, factor: int, lows: Iterable[str] = ()) -> None:
        self.factor = factor
        self.lows = frozenset(lows)
        self.ticks = 0
        self.acc: dict[str, Value] = {}

    def add(self, values: Mapping[str, Value]) -> dict[str, Value] | None:
        """Take one tick; every `factor`-th returns the folded values (else None)."""
        for name, v in values.items():
            cur = self.acc.get(name)
            if v is None or cur is None:
                self.acc[name] = cur if v is None else v
            else:
                self.acc[name] = min(cur, v) if name in self.lows else max(cur, v)
        self.ticks += 1
        if self.ticks < self.factor:
            return None
        out, self.acc, self.ticks = self.acc, {}, 0
        return out


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None if empty."""
    s = sorted(values)
    if not s:
        return None
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class LagWindow:
    """Event-loop lags (seconds late) seen over the last `window` seconds."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, lag: float) -> None:
        self.samples.append((t, max(0.0, lag)))
        self.trim(t)

    def trim(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - self.window:
            self.samples.popleft()

    def p99(self) -> float | None:
        return percentile((lag for _, lag in self.samples), 99)

    def max(self, since: float | None = None) -> float | None:
        """Largest lag in the window (or since `since`); None if none."""
        lags = [lag for t, lag in self.samples if since is None or t > since]
        return max(lags) if lags else None


class ResettableSum:
    """A monotonic total over sources whose own counters may start again from 0 (a
    service's output offset after it was removed and added back, an engine-side counter
    after a handoff): a source going down counts its new value as fresh growth, so the
    total never decreases."""

    def __init__(self, total: float = 0, last: Mapping[str, float] | None = None) -> None:
        self.total = total
        self.last: dict[str, float] = dict(last or {})

    def update(self, values: Mapping[str, float]) -> float:
        """Take the sources' current values; returns the new total. Sources missing here
        are forgotten (a later return counts from 0)."""
        for k, v in values.items():
            prev = self.last.get(k, 0)
            self.total += v - prev if v >= prev else v
        self.last = dict(values)
        return self.total

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "last": dict(self.last)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResettableSum:
        return cls(d["total"], d["last"])
