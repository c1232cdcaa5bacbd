"""Metrics built on the engine's events and process sampling (DESIGN.md §3,
docs/METRICS.md). The engine never imports this package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_supervisor.engine.supervisor import Extension, Supervisor


def attach_metrics(sup: Supervisor) -> list[Extension]:
    """Attach every metrics layer the config asks for, before `sup.open()`."""
    from tui_supervisor.metrics.collector import ReliabilityCollector
    from tui_supervisor.metrics.sampler import ResourceSampler

    exts: list[Extension] = [ReliabilityCollector.attach(sup)]
    if sup.config.settings.sample_interval > 0:
        exts.append(ResourceSampler.attach(sup))
    return exts
