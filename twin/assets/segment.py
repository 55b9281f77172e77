"""A road segment (one undirected street edge of the graph)."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Segment", "SCHEMA"]

SCHEMA = load_schema("segment")


@dataclasses.dataclass(frozen=True)
class Segment:
    """A road segment (one undirected street edge of the graph).

    Fields follow ``schemas/segment.csv``.
    """

    id: str
    """stable id, segment:NNNNNN."""
    u: int
    """graph node at one end."""
    v: int
    """graph node at the other end."""
    osmid: str | None
    """OSM way id(s), or the municipal arc id."""
    name: str | None
    """street name."""
    highway: str | None
    """road class (OSM highway value, inferred for municipal data)."""
    lanes: int
    """total lanes (both directions)."""
    lanes_forward: int
    """lanes in the direction u to v of the segment's first edge (the way's direction for OSM)."""
    lanes_backward: int
    """lanes in the other direction (0 on a one-way street)."""
    lanes_source: str
    """where the lanes come from: osm, inferred or default."""
    speed_kph: float
    """free-flow speed (maxspeed or class default) [km/h]."""
    oneway: bool
    """one-way for motor traffic."""
    lit: str | None
    """OSM lit tag: yes, no, unknown, or mixed (merged lit and unlit ways); lit by tag if yes."""
    lit_assumed: bool
    """lit by assumption: lit unknown (or mixed) and the road class lit by default."""
    length_m: float
    """length along the centreline [m]."""
    drive: bool
    """open to motor traffic."""
    walk: bool
    """open to pedestrians."""
    lighting_class: str | None
    """EN 13201 class at design (peak) conditions, e.g. M3, C2, P4."""
    geometry: BaseGeometry
    """centreline, in the twin's CRS."""
