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
    pocket_left: int
    """left-turn pocket lanes at the stop line (lanes serving only the left turn)."""
    pocket_left_m: float
    """storage length of the left-turn pocket [m]."""
    pocket_right: int
    """right-turn pocket lanes at the stop line (lanes serving only the right turn)."""
    pocket_right_m: float
    """storage length of the right-turn pocket [m]."""
    pocket_source: str | None
    """where the pockets come from: osm (turn:lanes), inferred (warrant on counts), none."""
    left_turn_veh_h: float
    """peak-hour left-turn flow the inferred pockets were sized on (NaN if none) [veh/h]."""
    right_turn_veh_h: float
    """peak-hour right-turn flow the inferred pockets were sized on (NaN if none) [veh/h]."""
    turn_flow_source: str | None
    """where those turning flows come from: count x default share, given, or empty."""
    geometry: BaseGeometry
    """last metres of the approach, in the twin's CRS."""
