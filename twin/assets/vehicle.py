"""A city vehicle (plough, salter, patrol, emergency)."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Vehicle", "SCHEMA"]

SCHEMA = load_schema("vehicle")


@dataclasses.dataclass(frozen=True)
class Vehicle:
    """A city vehicle (plough, salter, patrol, emergency).

    Fields follow ``schemas/vehicle.csv``.
    """

    id: str
    """stable id, vehicle:N."""
    vehicle_type: str | None
    """plough, salter, patrol, emergency or maintenance."""
    depot: str | None
    """home depot."""
    geometry: BaseGeometry
    """position at the depot, in the twin's CRS."""
