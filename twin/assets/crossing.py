"""A pedestrian crossing (OSM ``highway=crossing`` / ``crossing=*``), a conflict area to light."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["SCHEMA", "Crossing"]

SCHEMA = load_schema("crossing")


@dataclasses.dataclass(frozen=True)
class Crossing:
    """A pedestrian crossing: a conflict area whose lights are held to its requirement.

    Fields follow ``schemas/crossing.csv``.
    """

    id: str
    """stable id, crossing:N."""
    source: str | None
    """osm (highway=crossing, or a node with a crossing=* tag)."""
    ref: str | None
    """OSM element id."""
    crossing: str | None
    """OSM crossing tag (uncontrolled, marked, traffic_signals, zebra or unmarked)."""
    signals: bool
    """true where the crossing has traffic signals."""
    segment: str | None
    """road segment it crosses (nearest within 30 m)."""
    conflict_class: str | None
    """EN 13201 C class of the conflict area (comparable to the road's class, one step higher)."""
    lights: int
    """light points within the serving radius (25 m) that are held to the crossing's requirement."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""
