"""Turn pockets at the approaches of signalised junctions.

A turn pocket is a lane at the stop line that serves one turn only, with a storage length: a
left turner waiting there for a gap or its stage no longer holds the through vehicles behind it
(the traffic DES reads it, :mod:`twin.scenarios.traffic`). Each approach (a drive edge's end at a
signalised junction) gets its left and right pockets (lanes, storage in m) and their provenance:

``osm``
    The approach's ``turn:lanes`` (or ``turn:lanes:forward|backward``, read and checked by
    :func:`twin.derive.segments.parse_turn_lanes`) shows more lanes at the stop line than the
    way has (``lanes_dir``): the extra lanes are pockets, given to the exclusive left-turn lanes
    first, then to the exclusive right-turn ones, with the storage
    :data:`STORAGE_MIN_M` (OSM gives no pocket length; at most the edge's length). Or it shows
    exclusive turn lanes on as many lanes as the way has: those lanes serve their turn over the
    whole edge (storage: the edge's length), the others go on.
``inferred``
    No such tag (Montpellier's municipal centrelines have none): the rule below, on the
    approach's counted peak hour and its length.
``none``
    Neither: no pocket (the lane model's kerb and centre lanes serve the turns).

The rule (:func:`infer_pocket`)
-------------------------------
*Warrant.* HCM 2000 (Chapter 10, design guidance for signalised intersections, repeated by
AASHTO's Green Book): consider an exclusive left-turn lane where the left-turn flow exceeds
:data:`LEFT_POCKET_VEH_H` (100 veh/h) in the peak hour, two where it exceeds
:data:`DUAL_LEFT_POCKET_VEH_H` (300 veh/h), and an exclusive right-turn lane where the
right-turn flow exceeds :data:`RIGHT_POCKET_VEH_H` (300 veh/h) and so does the through flow per
lane beside it.

*Turning flows.* The data counts streets, not turns, so the turning flows are not measured:
by default they are the approach's counted peak hour (``aadt``, the street's busiest counted
direction, times :data:`twin.derive.segments.PEAK_HOUR_SHARE`) times
:data:`DEFAULT_TURN_SHARE` (an assumed 10% left and 10% right where the junction has such an
exit; no published split for Montpellier exists), recorded as ``count x default share``. With
it, the left-turn warrant reads "an approach counted above 1,000 veh/h in its peak hour". The
turning flows of an equilibrium assignment (:func:`twin.scenarios.assignment`) may be given
instead (``turn_flows``, recorded as ``given``). An uncounted approach gets no inferred pocket.
A turn counts only where the junction has an exit that way (a left exit: 30-150 degrees to the
left of the approach's heading; U-turns are not turns here).

*Storage.* AASHTO, A Policy on Geometric Design of Highways and Streets (2011, section 9.7.3):
at a signal, store 1.5 to 2 times the mean number of turners arriving per cycle; taken here as
:data:`STORAGE_CYCLES` (2) x turning flow x cycle (:data:`DEFAULT_CYCLE_S`, 90 s, where the
junction's plan is not known at build time) x :data:`VEHICLE_SPACING_M` (7.5 m), at least
:data:`STORAGE_MIN_M` (30 m, 100 ft, the usual minimum of US state design manuals).

*Room.* The pocket and its taper (:data:`TAPER_M`, 15 m, an urban bay taper) must fit on the
approach's edge: a shorter edge gets a pocket cut to what fits if that still stores two cars
(:data:`VEHICLE_SPACING_M` x 2), none otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import shapely

from ._tags import to_number
from .segments import PEAK_HOUR_SHARE, parse_turn_lanes

__all__ = [
    "DEFAULT_CYCLE_S",
    "DEFAULT_TURN_SHARE",
    "DUAL_LEFT_POCKET_VEH_H",
    "LEFT_POCKET_VEH_H",
    "POCKET_COLUMNS",
    "RIGHT_POCKET_VEH_H",
    "STORAGE_CYCLES",
    "STORAGE_MIN_M",
    "TAPER_M",
    "VEHICLE_SPACING_M",
    "infer_pocket",
    "osm_pocket",
    "pockets",
]

LEFT_POCKET_VEH_H = 100.0
DUAL_LEFT_POCKET_VEH_H = 300.0
RIGHT_POCKET_VEH_H = 300.0
DEFAULT_TURN_SHARE = 0.10
DEFAULT_CYCLE_S = 90.0
STORAGE_CYCLES = 2.0
VEHICLE_SPACING_M = 7.5
STORAGE_MIN_M = 30.0
TAPER_M = 15.0

#: Columns :func:`pockets` adds to the approach table.
POCKET_COLUMNS = (
    "pocket_left",
    "pocket_left_m",
    "pocket_right",
    "pocket_right_m",
    "pocket_source",
    "left_turn_veh_h",
    "right_turn_veh_h",
    "turn_flow_source",
)

_LEFT = frozenset({"left", "slight_left", "sharp_left", "reverse"})
_RIGHT = frozenset({"right", "slight_right", "sharp_right"})

#: (left lanes, left storage m, right lanes, right storage m, lanes at the stop line)
Pocket = tuple[int, float, int, float, int]


def osm_pocket(
    turn: str, lanes_dir: int, length_m: float, *, where: str, issues: list[str]
) -> Pocket | None:
    """The pockets a ``turn:lanes`` value shows at an approach, or ``None`` if it shows none.

    Examples
    --------
    Two lanes along the way, three at the stop line: the left-turn lane is a pocket.

    >>> issues = []
    >>> osm_pocket("left|through|through;right", 2, 120.0, where="s", issues=issues)
    (1, 30.0, 0, 0.0, 3)

    As many lanes as the way: its exclusive left lane serves the turn over the whole edge.

    >>> osm_pocket("left|through|through", 3, 80.0, where="s", issues=issues)
    (1, 80.0, 0, 0.0, 3)
    >>> osm_pocket("through|through;right", 2, 80.0, where="s", issues=issues) is None
    True
    >>> osm_pocket("left|through|" + "|".join(["through"] * 8), 2, 80.0, where="segment:1",
    ...            issues=issues) is None
    True
    >>> issues
    ["segment:1: turn:lanes='left|through|through|through|through|through|through|through|through|through' has 10 lanes, not 1-8"]
    """  # noqa: E501
    lanes = parse_turn_lanes(turn, where=where, issues=issues)
    if not lanes:
        return None
    left = sum(1 for lane in lanes if lane and lane <= _LEFT)
    right = sum(1 for lane in lanes if lane and lane <= _RIGHT)
    n_line = len(lanes)
    if not left and not right or left + right >= n_line:
        return None  # no exclusive turn lane, or no lane going on beside them
    extra = n_line - lanes_dir
    if extra > 0:
        n_left = min(left, extra)
        n_right = min(right, extra - n_left)
        if not n_left and not n_right:
            return None
        storage = min(STORAGE_MIN_M, length_m)
        return n_left, storage if n_left else 0.0, n_right, storage if n_right else 0.0, n_line
    return left, length_m if left else 0.0, right, length_m if right else 0.0, n_line


def _storage(flow_veh_h: float, cycle_s: float) -> float:
    cars = math.ceil(STORAGE_CYCLES * flow_veh_h * cycle_s / 3600.0)
    return max(STORAGE_MIN_M, cars * VEHICLE_SPACING_M)


def _fit(storage_m: float, length_m: float) -> float:
    """The storage that fits on an edge with its taper; 0 if not two cars."""
    room = length_m - TAPER_M
    if room < 2 * VEHICLE_SPACING_M:
        return 0.0
    return min(storage_m, math.floor(room / VEHICLE_SPACING_M) * VEHICLE_SPACING_M)


def infer_pocket(
    left_veh_h: float,
    right_veh_h: float,
    through_veh_h: float,
    lanes_dir: int,
    length_m: float,
    *,
    cycle_s: float = DEFAULT_CYCLE_S,
) -> Pocket | None:
    """The pockets the warrant asks for at an approach (see the module's rule), or ``None``.

    Parameters
    ----------
    left_veh_h, right_veh_h, through_veh_h : float
        Peak-hour turning and through flows of the approach (veh/h).
    lanes_dir : int
        Lanes of the approach's edge.
    length_m : float
        Length of the approach's edge (m).
    cycle_s : float
        Signal cycle (s).

    Examples
    --------
    A counted peak of 1,440 veh/h, 10% of it turning left (144 veh/h) on a 200 m edge: one left
    pocket storing twice the 3.6 left turners of a 90 s cycle, 8 cars (60 m).

    >>> infer_pocket(144.0, 144.0, 1152.0, 2, 200.0)
    (1, 60.0, 0, 0.0, 3)

    Below the warrant, or on an edge too short to hold a pocket and its taper:

    >>> infer_pocket(90.0, 90.0, 720.0, 1, 200.0) is None
    True
    >>> infer_pocket(144.0, 0.0, 1200.0, 1, 25.0) is None
    True

    350 veh/h left (two pockets) and 330 veh/h right beside 700 veh/h through on two lanes:

    >>> infer_pocket(350.0, 330.0, 700.0, 2, 100.0)
    (2, 67.5, 1, 82.5, 5)
    """
    n_left = 0
    if left_veh_h > DUAL_LEFT_POCKET_VEH_H:
        n_left = 2
    elif left_veh_h > LEFT_POCKET_VEH_H:
        n_left = 1
    per_lane = through_veh_h / max(lanes_dir, 1)
    n_right = 1 if right_veh_h > RIGHT_POCKET_VEH_H and per_lane > RIGHT_POCKET_VEH_H else 0
    m_left = _fit(_storage(left_veh_h / max(n_left, 1), cycle_s), length_m) if n_left else 0.0
    m_right = _fit(_storage(right_veh_h, cycle_s), length_m) if n_right else 0.0
    n_left = n_left if m_left > 0 else 0
    n_right = n_right if m_right > 0 else 0
    if not n_left and not n_right:
        return None
    return n_left, m_left, n_right, m_right, lanes_dir + n_left + n_right


def _heading(line: shapely.LineString, *, at_end: bool, span_m: float = 20.0) -> np.ndarray:
    """Unit vector of a line's direction over its first (or last) ``span_m`` metres."""
    n = line.length
    if at_end:
        a, b = line.interpolate(max(n - span_m, 0.0)), line.interpolate(n)
    else:
        a, b = line.interpolate(0.0), line.interpolate(min(span_m, n))
    v = np.array([b.x - a.x, b.y - a.y])
    norm = float(np.hypot(*v))
    return v / norm if norm > 0 else v


def _line(graph: nx.MultiDiGraph, u: Any, v: Any, d: Mapping[str, Any]) -> shapely.LineString:
    geom = d.get("geometry")
    if geom is None:
        nu, nv = graph.nodes[u], graph.nodes[v]
        geom = shapely.LineString([(nu["x"], nu["y"]), (nv["x"], nv["y"])])
    return geom


def _exits(
    graph: nx.MultiDiGraph, u: Any, v: Any, d: Mapping[str, Any], nodes: set[Any]
) -> tuple[bool, bool]:
    """Whether the junction has an exit to the left and one to the right of an approach."""
    inside = nodes | {v}
    h_in = _heading(_line(graph, u, v, d), at_end=True)
    left = right = False
    for a in inside:
        for _, b, e in graph.out_edges(a, data=True):
            if b in inside or b == u or not e.get("drive", True):
                continue
            h_out = _heading(_line(graph, a, b, e), at_end=False)
            cross = float(h_in[0] * h_out[1] - h_in[1] * h_out[0])
            dot = float(h_in @ h_out)
            angle = math.degrees(math.atan2(cross, dot))  # > 0: to the left
            left |= 30.0 < angle < 150.0
            right |= -150.0 < angle < -30.0
    return left, right


def pockets(
    graph: nx.MultiDiGraph,
    junction: pd.DataFrame,
    approach: pd.DataFrame,
    *,
    turn_flows: Mapping[tuple[Any, Any, int], tuple[float, float, float]] | None = None,
    cycle_s: float = DEFAULT_CYCLE_S,
    issues: list[str] | None = None,
) -> pd.DataFrame:
    """Turn pockets of every approach: the approach table with :data:`POCKET_COLUMNS` added.

    Sets ``pocket_left``, ``pocket_left_m``, ``pocket_right``, ``pocket_right_m``,
    ``pocket_source`` and ``lanes_line`` (lanes at the stop line) on the approaches' graph edges
    that get a pocket (what :class:`twin.scenarios.traffic.TrafficScenario` reads).

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        The street graph (:func:`twin.derive.segments.segments` has set ``lanes_dir``,
        ``turn_lanes`` and ``segment`` on its edges; municipal edges carry ``aadt``).
    junction, approach : pandas.DataFrame
        Junctions (``id``, ``nodes``) and approaches (``junction``, ``u``, ``v``, ``key``) of
        :func:`twin.derive.junctions.junctions`.
    turn_flows : mapping, optional
        Peak-hour (left, right, through) flows (veh/h) per approach edge ``(u, v, key)``, for
        instance an equilibrium assignment's; instead of the counted flow times
        :data:`DEFAULT_TURN_SHARE` where given.
    cycle_s : float
        Signal cycle (s) the storage is sized for.
    issues : list of str, optional
        Receives a line per ``turn:lanes`` value in error (with the segment id).
    """
    out = approach.copy()
    n = len(out)
    cols: dict[str, list[Any]] = {c: [] for c in POCKET_COLUMNS}
    issues = [] if issues is None else issues
    nodes_of: dict[str, set[Any]] = {}
    for _, j in junction.iterrows():
        text = str(j.get("nodes") or "")
        nodes_of[str(j["id"])] = {int(x) if x.lstrip("-").isdigit() else x for x in text.split()}
    for i in range(n):
        row = out.iloc[i]
        u, v, k = row["u"], row["v"], int(row["key"])
        u = int(u) if isinstance(u, np.integer) else u
        v = int(v) if isinstance(v, np.integer) else v
        d = graph.edges[u, v, k]
        lanes_dir = int(d.get("lanes_dir", 1) or 1)
        length = float(d.get("length", 0.0))
        where = f"{d.get('segment')} ({row['id']})"
        found: Pocket | None = None
        source, flows, basis = "none", (math.nan, math.nan, math.nan), ""
        turn = str(d.get("turn_lanes") or "")
        if turn:
            found = osm_pocket(turn, lanes_dir, length, where=where, issues=issues)
            source = "osm" if found else "none"
        elif (u, v, k) in (turn_flows or {}):
            left, right, through = (turn_flows or {})[(u, v, k)]
            flows, basis = (float(left), float(right), float(through)), "given"
        else:
            aadt = to_number(d.get("aadt"))
            if math.isfinite(aadt) and aadt > 0:
                has_left, has_right = _exits(graph, u, v, d, nodes_of.get(row["junction"], set()))
                peak = PEAK_HOUR_SHARE * aadt
                left = DEFAULT_TURN_SHARE * peak if has_left else 0.0
                right = DEFAULT_TURN_SHARE * peak if has_right else 0.0
                flows, basis = (left, right, peak - left - right), "count x default share"
        if basis:
            found = infer_pocket(*flows, lanes_dir, length, cycle_s=cycle_s)
            source = "inferred" if found else "none"
        n_l, m_l, n_r, m_r, line = found or (0, 0.0, 0, 0.0, lanes_dir)
        for c, val in zip(
            POCKET_COLUMNS, (n_l, m_l, n_r, m_r, source, flows[0], flows[1], basis), strict=True
        ):
            cols[c].append(val)
        if found:
            d.update(
                pocket_left=n_l,
                pocket_left_m=m_l,
                pocket_right=n_r,
                pocket_right_m=m_r,
                pocket_source=source,
                lanes_line=line,
            )
    for c, vals in cols.items():
        out[c] = vals
    for c in ("pocket_left", "pocket_right"):
        out[c] = out[c].astype("int64")
    return out
