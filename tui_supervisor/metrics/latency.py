"""Latency histograms: respawn latency (exit observed → replacement spawned, backoff
excluded) and detection latency (SIGKILL sent → exit observed), per service and for the
whole engine. `Histogram` is pure; `LatencyCollector` feeds it from engine events."""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any

from tui_supervisor.engine.events import AnyEvent, Exited, Spawned
from tui_supervisor.engine.supervisor import Extension, Supervisor

BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                              0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds in seconds (Prometheus `le`), +Inf implied."""
RECENT = 1000
"""Observations kept for exact percentiles."""


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an ascending list; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[int(rank) - 1]


class Histogram:
    """Fixed buckets (lifetime counts, for Prometheus) plus the last `RECENT` values (exact
    p50/p99/max of recent behaviour)."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0
        self.recent: deque[float] = deque(maxlen=RECENT)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1
        self.recent.append(value)

    def view(self) -> dict[str, Any]:
        """{"buckets", "counts" (per bucket, not cumulative; last = +Inf), "sum", "count",
        "p50", "p99", "max" (of the recent values)}."""
        ordered = sorted(self.recent)
        return {"buckets": list(self.buckets), "counts": list(self.counts), "sum": self.sum,
                "count": self.count, "p50": percentile(ordered, 50),
                "p99": percentile(ordered, 99), "max": ordered[-1] if ordered else None}

    def to_dict(self) -> dict[str, Any]:
        return {"buckets": list(self.buckets), "counts": list(self.counts), "sum": self.sum,
                "count": self.count, "recent": list(self.recent)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Histogram:
        h = cls(tuple(d["buckets"]))
        h.counts, h.sum, h.count = list(d["counts"]), d["sum"], d["count"]
        h.recent.extend(d["recent"])
        return h


KINDS = ("respawn", "detect")


class LatencyCollector(Extension):
    """Per-service and engine-wide histograms, in snapshots under `latency`."""

    name = "latency"

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Histogram]] = {}
        self.engine = {k: Histogram() for k in KINDS}

    @classmethod
    def attach(cls, sup: Supervisor) -> LatencyCollector:
        c = cls()
        sup.extensions.append(c)
        return c

    def observe(self, service: str, kind: str, value: float) -> None:
        hists = self.services.get(service)
        if hists is None:
            hists = self.services[service] = {k: Histogram() for k in KINDS}
        hists[kind].observe(value)
        self.engine[kind].observe(value)

    def on_event(self, ev: AnyEvent) -> None:
        if isinstance(ev, Spawned) and ev.respawn_latency is not None:
            self.observe(ev.service, "respawn", ev.respawn_latency)
        elif isinstance(ev, Exited) and ev.detect_latency is not None:
            self.observe(ev.service, "detect", ev.detect_latency)

    def service_view(self, service: str) -> dict[str, Any]:
        hists = self.services.get(service)
        return {k: h.view() for k, h in hists.items()} if hists else {}

    def engine_view(self) -> dict[str, Any]:
        return {k: h.view() for k, h in self.engine.items()}

    def detach(self) -> dict[str, Any]:
        return {"engine": {k: h.to_dict() for k, h in self.engine.items()},
                "services": {n: {k: h.to_dict() for k, h in hs.items()}
                             for n, hs in self.services.items()}}

    def adopt(self, record: dict[str, Any]) -> None:
        self.engine = {k: Histogram.from_dict(d) for k, d in record["engine"].items()}
        self.services = {n: {k: Histogram.from_dict(d) for k, d in hs.items()}
                         for n, hs in record["services"].items()}
