"""A signalised junction: traffic-signal points clustered within ~30 m."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Junction", "SCHEMA"]

SCHEMA = load_schema("junction")


@dataclasses.dataclass(frozen=True)
class Junction:
    """A signalised junction: traffic-signal points clustered within ~30 m.

    Fields follow ``schemas/junction.csv``.
    """

    id: str
    """stable id, junction:N."""
    name: str | None
    """name (from the data) or the names of the streets that meet."""
    source: str | None
    """osm (highway=traffic_signals nodes, clustered) or the municipal signal inventory."""
    n_signals: int
    """number of signal points clustered into the junction."""
    nodes: str | None
    """graph nodes of the junction, space-separated."""
    n_approaches: int
    """number of approaches."""
    geometry: BaseGeometry
    """centre, EPSG:2154."""
