"""Reliability of one service: availability, downtime, MTTR, MTBF — lifetime and over a
rolling window. Pure: the caller says what happened and when (monotonic seconds).

Definitions (docs/METRICS.md; docs/ARCHITECTURE.md §7):
- *wanted*: the operator (or autostart) wants the service up; *up*: it is `running` (or
  `daemonized`).
- An *outage* starts at a failure (an exit nobody asked for: a crash or a failed start)
  and ends when the service is up again, or when the operator stops it; failures during
  the outage extend it. *Downtime* = time in outages, so the start-up of a start somebody
  asked for (operator, autostart, config change) is not downtime.
- availability = up time / (up time + downtime); none before the service was ever up or
  down.
- MTTR = mean duration of outages that recovered (backoff included). An outage still open
  is downtime, not MTTR; one ended by an operator stop never recovered: downtime, not MTTR.
- MTBF = total up time / failures.
- As counters (they only grow, for Prometheus): up time, downtime, `outages` (recovered
  outages) and `repair_time` (their summed duration), so MTTR over any window is the
  increase of `repair_time` over the increase of `outages`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

MAX_RECENT = 2048
"""Entries kept per rolling-window series. Past it the two oldest merge into one that
keeps their sum (the window's figures stay exact, but for the entry straddling the
window's start, prorated): a crash loop of hundreds of failures a second costs bounded
memory, not one entry per failure for an hour."""


def _squeeze(d: deque[tuple[float, ...]]) -> None:
    """Merge the two oldest entries while over MAX_RECENT: (first's start, second's end,
    then the sums of the rest)."""
    while len(d) > MAX_RECENT:
        a, b = d.popleft(), d.popleft()
        d.appendleft((a[0], b[1], *(x + y for x, y in zip(a[2:], b[2:], strict=True))))


@dataclass
class _Span:
    """Total time a condition held, plus its recent intervals for the rolling window:
    (start, end, time held inside)."""

    total: float = 0.0
    since: float | None = None
    recent: deque[tuple[float, float, float]] | None = None

    def set(self, t: float, on: bool) -> None:
        if on and self.since is None:
            self.since = t
        elif not on and self.since is not None:
            self.total += t - self.since
            if self.recent is None:
                self.recent = deque()
            self.recent.append((self.since, t, t - self.since))
            _squeeze(self.recent)  # type: ignore[arg-type]
            self.since = None

    def lifetime(self, now: float) -> float:
        return self.total + (now - self.since if self.since is not None else 0.0)

    def within(self, start: float, now: float) -> float:
        """Time the condition held inside [start, now]."""
        held = 0.0
        recent = self.recent or ()
        for a, b, h in recent:
            if b > start:
                held += h if a >= start else h * (b - start) / (b - a)
        if self.since is not None:
            held += now - max(self.since, start)
        return held

    def prune(self, start: float) -> None:
        while self.recent and self.recent[0][1] <= start:
            self.recent.popleft()


class Reliability:
    def __init__(self, window: float = 3600.0) -> None:
        self.window = window
        self._wanted = _Span()
        self._up = _Span()
        self._down = _Span()
        self.failures = 0
        self.failure_times: deque[tuple[float, float, int]] = deque()
        """(first, last, how many) failure times, for the window's count."""
        self._outage_start: float | None = None
        self._outages: deque[tuple[float, float, float, int]] = deque()
        """Ended outages: (start, end, their total duration, how many)."""
        self._outage_total = 0.0
        self._outage_count = 0
        self.ready_latency: float | None = None
        """Seconds from the last (re)start to ready (readiness-gated services)."""
        self._ready_latency_total = 0.0
        self._ready_latency_count = 0

    # -- what happened ----------------------------------------------------------------
    def set_wanted(self, t: float, wanted: bool) -> None:
        self._wanted.set(t, wanted)
        if not wanted:
            self._outage_start = None  # stopped by hand: this outage never recovers
            self._down.set(t, False)

    def set_up(self, t: float, up: bool) -> None:
        self._up.set(t, up)
        if up:
            self._down.set(t, False)
        if up and self._outage_start is not None:
            self._outages.append((self._outage_start, t, t - self._outage_start, 1))
            _squeeze(self._outages)  # type: ignore[arg-type]
            self._outage_total += t - self._outage_start
            self._outage_count += 1
            self._outage_start = None

    def unready(self, t: float) -> None:
        """A readiness probe failing on a process that is up: down, in an outage (not a
        failure: nothing exited; the outage ends when it is ready again)."""
        self._up.set(t, False)
        self._down.set(t, True)
        if self._outage_start is None:
            self._outage_start = t

    def became_ready(self, latency: float) -> None:
        """Ready `latency` seconds after its (re)start."""
        self.ready_latency = latency
        self._ready_latency_total += latency
        self._ready_latency_count += 1

    def failure(self, t: float) -> None:
        """An exit nobody asked for (a crash, or a failed start)."""
        self.failures += 1
        self.failure_times.append((t, t, 1))
        _squeeze(self.failure_times)  # type: ignore[arg-type]
        self._up.set(t, False)
        self._down.set(t, True)
        if self._outage_start is None:
            self._outage_start = t

    # -- what it means ----------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, float | int | None]:
        start = now - self.window
        for span in (self._up, self._wanted, self._down):
            span.prune(start)
        while self._outages and self._outages[0][1] < start:
            self._outages.popleft()
        while self.failure_times and self.failure_times[0][1] < start:
            self.failure_times.popleft()
        up, down = self._up.lifetime(now), self._down.lifetime(now)
        up_w, down_w = self._up.within(start, now), self._down.within(start, now)
        outages_w = sum(o[3] for o in self._outages)
        return {
            "up_time": up,
            "wanted_time": self._wanted.lifetime(now),
            "downtime": down,
            "availability": up / (up + down) if up + down > 0 else None,
            "availability_window": up_w / (up_w + down_w) if up_w + down_w > 0 else None,
            "downtime_window": down_w,
            "failures": self.failures,
            "failures_window": sum(n for _, _, n in self.failure_times),
            "outages": self._outage_count,
            "repair_time": self._outage_total,
            "mttr": self._outage_total / self._outage_count if self._outage_count else None,
            "mttr_window": sum(o[2] for o in self._outages) / outages_w if outages_w else None,
            "mtbf": up / self.failures if self.failures else None,
            "outage_open_since": self._outage_start,
            "ready_latency": self.ready_latency,
            "ready_latency_mean": self._ready_latency_total / self._ready_latency_count
            if self._ready_latency_count else None,
        }

    # -- carried across a handoff (detach / adopt, code reload) -------------------------
    def to_dict(self) -> dict[str, object]:
        def span(sp: _Span) -> list[object]:
            return [sp.total, sp.since, [list(x) for x in sp.recent or ()]]

        return {"window": self.window, "wanted": span(self._wanted), "up": span(self._up),
                "down": span(self._down),
                "failures": self.failures,
                "failure_times": [list(x) for x in self.failure_times],
                "outage_start": self._outage_start,
                "outages": [list(x) for x in self._outages],
                "outage_total": self._outage_total, "outage_count": self._outage_count,
                "ready_latency": [self.ready_latency, self._ready_latency_total,
                                  self._ready_latency_count]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reliability:
        r = cls(d["window"])
        spans = [(r._wanted, d["wanted"]), (r._up, d["up"]), (r._down, d["down"])]
        # (an older engine's record: intervals as (start, end), failure times bare,
        # outages as (start, end))
        for sp, (total, since, recent) in spans:
            sp.total, sp.since = total, since
            sp.recent = deque((x[0], x[1], x[2] if len(x) > 2 else x[1] - x[0])
                              for x in recent)
        r.failures = d["failures"]
        r.failure_times.extend((x, x, 1) if isinstance(x, int | float) else (x[0], x[1], x[2])
                               for x in d["failure_times"])
        r._outage_start = d["outage_start"]
        r._outages.extend((x[0], x[1], x[2], x[3]) if len(x) > 2 else
                          (x[0], x[1], x[1] - x[0], 1) for x in d["outages"])
        r._outage_total, r._outage_count = d["outage_total"], d["outage_count"]
        if isinstance(d.get("ready_latency"), list) and len(d["ready_latency"]) == 3:
            (r.ready_latency, r._ready_latency_total,
             r._ready_latency_count) = d["ready_latency"]
        return r

