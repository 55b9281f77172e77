"""A signalised junction or crossing: traffic-signal points clustered within 60 m."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Junction", "SCHEMA"]

SCHEMA = load_schema("junction")


@dataclasses.dataclass(frozen=True)
class Junction:
    """A signalised junction or crossing: traffic-signal points clustered within 60 m.

    Fields follow ``schemas/junction.csv``.
    """

    id: str
    """stable id, junction:N."""
    name: str | None
    """name (from the data) or the names of the streets that meet."""
    kind: str | None
    """junction, or crossing: a signalised pedestrian crossing of its own."""
    source: str | None
    """osm (traffic_signals and crossing=traffic_signals nodes, clustered), municipal or sumo."""
    n_signals: int
    """number of signal points clustered into the junction."""
    nodes: str | None
    """graph nodes of the junction, space-separated."""
    n_approaches: int
    """number of approaches."""
    geometry: BaseGeometry
    """centre, in the twin's CRS."""
