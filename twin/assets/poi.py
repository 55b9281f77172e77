"""A point of interest that draws footfall (shop, bar, school, transit stop)."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["PointOfInterest", "SCHEMA"]

SCHEMA = load_schema("poi")


@dataclasses.dataclass(frozen=True)
class PointOfInterest:
    """A point of interest that draws footfall (shop, bar, school, transit stop).

    Fields follow ``schemas/poi.csv``.
    """

    id: str
    """stable id, poi:N."""
    category: str | None
    """shop, food_drink (bars, restaurants, cafes), school, transit (stops) or other amenity."""
    tag: str | None
    """the OSM tag value (bar, bakery, bus_stop, ...)."""
    ref: str | None
    """OSM element id."""
    segment: str | None
    """nearest walkable segment."""
    geometry: BaseGeometry
    """representative point, in the twin's CRS."""
