"""A public building (OSM amenity)."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Building", "SCHEMA"]

SCHEMA = load_schema("building")


@dataclasses.dataclass(frozen=True)
class Building:
    """A public building (OSM amenity).

    Fields follow ``schemas/building.csv``.
    """

    id: str
    """stable id, building:N."""
    source: str | None
    """osm amenity."""
    ref: str | None
    """OSM element id."""
    amenity: str | None
    """OSM amenity (townhall, school, library, hospital, police, ...)."""
    name: str | None
    """name."""
    geometry: BaseGeometry
    """representative point, in the twin's CRS."""
