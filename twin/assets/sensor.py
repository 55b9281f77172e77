"""A sensor: footfall counter, loop detector or road-weather station."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Sensor", "SCHEMA"]

SCHEMA = load_schema("sensor")


@dataclasses.dataclass(frozen=True)
class Sensor:
    """A sensor: footfall counter, loop detector or road-weather station.

    Fields follow ``schemas/sensor.csv``.
    """

    id: str
    """stable id, sensor:N."""
    sensor_type: str | None
    """footfall (pedestrian counter), loop (junction approach) or weather (road station)."""
    source: str | None
    """derived by the builder (no OSM tag maps these)."""
    segment: str | None
    """segment it counts on."""
    approach: str | None
    """junction approach (loop detectors only)."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""
