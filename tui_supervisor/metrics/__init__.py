"""Metrics built on the engine's events and process sampling (docs/ARCHITECTURE.md §7,
docs/METRICS.md). The engine never imports this package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    sup.settings_hooks.append(lambda old, new: settings_changed(sup, old, new))
    return exts


def settings_changed(sup: Supervisor, old: Any, new: Any) -> None:
    """A config reload changed `settings`: re-attach the sampler for a new
    sample_interval (its history starts again: the points would not line up) and the
    exporter for a new metrics_listen (a bind error is a notice, as at start-up)."""
    if old.sample_interval != new.sample_interval:
        from tui_supervisor.metrics.sampler import ResourceSampler

        for ext in [e for e in sup.extensions if isinstance(e, ResourceSampler)]:
            sup.remove_extension(ext)
        if new.sample_interval > 0:
            sup.add_extension(ResourceSampler(new.sample_interval))
    if old.metrics_listen != new.metrics_listen:
        from tui_supervisor.metrics.prometheus import PrometheusExporter

        for exporter in [e for e in sup.extensions if isinstance(e, PrometheusExporter)]:
            sup.remove_extension(exporter)
        if new.metrics_listen:
            sup.add_extension(PrometheusExporter(new.metrics_listen))
