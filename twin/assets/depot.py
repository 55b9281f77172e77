"""A fleet depot."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Depot", "SCHEMA"]

SCHEMA = load_schema("depot")


@dataclasses.dataclass(frozen=True)
class Depot:
    """A fleet depot.

    Fields follow ``schemas/depot.csv``.
    """

    id: str
    """stable id, depot:N."""
    source: str | None
    """derived: drive-graph nodes chosen by k-means over the network, one per k."""
    node: int
    """drive-graph node of the depot gate."""
    n_vehicles: int
    """vehicles based there."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""
