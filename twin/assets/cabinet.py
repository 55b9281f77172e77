"""A lighting cabinet (feeder) with its contracted power."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Cabinet", "SCHEMA"]

SCHEMA = load_schema("cabinet")


@dataclasses.dataclass(frozen=True)
class Cabinet:
    """A lighting cabinet (feeder) with its contracted power.

    Fields follow ``schemas/cabinet.csv``.
    """

    id: str
    """stable id, cabinet:N."""
    source: str | None
    """osm (man_made=street_cabinet + street_cabinet=lighting) or derived (by proximity)."""
    n_lights: int
    """number of lights on the feeder."""
    installed_power_w: float
    """sum of the feeder's lights at full output [W]."""
    contracted_power_w: float
    """contracted power cap: installed + 10%, rounded up to 3 kVA (cos phi ~ 1) [W]."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""
