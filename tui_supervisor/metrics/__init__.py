"""Metrics built on the engine's events and process sampling (DESIGN.md §3,
docs/METRICS.md). The engine never imports this package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_supervisor.engine.supervisor import Extension, Supervisor


def attach_metrics(sup: Supervisor) -> list[Extension]:
    """Attach every metrics layer the config asks for, before `sup.open()`."""
    from tui_supervisor.metrics.collector import ReliabilityCollector
    from tui_supervisor.metrics.incidents import Incidents
    from tui_supervisor.metrics.latency import LatencyCollector

    exts: list[Extension] = [ReliabilityCollector.attach(sup), LatencyCollector.attach(sup),
                             Incidents.attach(sup)]
    if sup.config.settings.sample_interval > 0:
        from tui_supervisor.metrics.sampler import ResourceSampler
        exts.append(ResourceSampler.attach(sup))
    if sup.config.settings.metrics_listen:  # prometheus_client is imported only then
        from tui_supervisor.metrics.prometheus import attach_prometheus
        exts += attach_prometheus(sup)
    return exts
