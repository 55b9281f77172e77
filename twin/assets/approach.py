"""An approach of a signalised junction: a drive edge entering it."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Approach", "SCHEMA"]

SCHEMA = load_schema("approach")


@dataclasses.dataclass(frozen=True)
class Approach:
    """An approach of a signalised junction: a drive edge entering it.

    Fields follow ``schemas/approach.csv``.
    """

    id: str
    """stable id, approach:J.K (junction J, approach K)."""
    junction: str | None
    """junction it enters."""
    segment: str | None
    """road segment it arrives on."""
    u: int
    """graph edge start node."""
    v: int
    """graph edge end node (in the junction)."""
    key: int
    """graph edge key."""
    bearing_deg: float
    """direction of travel entering the junction, clockwise from north [deg]."""
    lanes: int
    """lanes in the direction of travel."""
    name: str | None
    """street name."""
    geometry: BaseGeometry
    """last metres of the approach, in the twin's CRS."""
