"""The model of a signalised junction: signal groups, movements, crossings, conflicts, intergreens.

A junction of the registry (``junction:N``: traffic-signal points clustered within ~30 m, its
graph nodes and its *approaches*, the drive edges entering it) becomes a
:class:`JunctionModel`:

* **signal groups**: one vehicle group per approach (its id is the approach's registry id,
  ``approach:N.K``; every movement of the approach shows the same signal, as on a French
  ``R11`` head) and one pedestrian group per crossing (``crossing:N.K``);
* **movements**: each approach to each *exit* (a drive edge leaving the junction) reachable
  through the junction's nodes, classed ``T`` (through), ``L`` or ``R`` from the change of
  bearing; U-turns back along the same street are left out;
* **pedestrian crossings**: ``highway=crossing`` graph nodes within :data:`CROSSING_RADIUS_M`
  of the junction's nodes, each on the arm (approach or exit edge, with its opposite
  direction) nearest to it. Data without any crossing (municipal sets) may *assume* one on
  every arm (``assume_crossings``); the model says which (``Crossing.source``). The width
  crossed is the carriageway: the way's lanes x :data:`LANE_WIDTH_M`;
* **conflicts**: each movement is a chord from its entry point (the approach's stop line, on
  the right half of the road) to its exit point. Two movements of different approaches
  conflict when their chords cross (their ends interleave around the junction) or when they
  share an exit (they merge). A conflict is *permissive* when one of the two is a left turn
  facing the other's approach (it gives way, as a permitted left turn does on a circular
  green) and *protected* otherwise. A crossing conflicts with every movement that enters from
  its arm or goes straight into it (protected), and with the turns into it (permissive:
  turning drivers give way to pedestrians, Code de la route art. R415-11). Two signal groups
  conflict when any of their movements have a protected conflict: they must never show green
  (or amber, or pedestrian clearance) together;
* **intergreens** (s), clearing group ``i`` to entering group ``j``: for vehicles the amber
  (:data:`AMBER_S`) plus an all-red that lets the last vehicle that passed on amber clear the
  conflict point, ``(s_c + l_veh) / v_c`` with ``s_c`` the distance from ``i``'s stop line to
  the conflict point, ``l_veh`` = :data:`VEHICLE_LENGTH_M` and ``v_c`` the approach speed (a
  turning vehicle at most :data:`TURN_SPEED_M_S`), at least :data:`ALL_RED_MIN_S`: the red
  clearance of ITE's *Guidelines for determining traffic signal change and clearance
  intervals* (2020), ``(W + L) / v``, taken to the conflict point as the German RiLSA do,
  less the time the entering group's first vehicle takes from its stop line to the conflict
  point at :data:`ENTER_SPEED_M_S` (RiLSA's entering time; a merge's conflict point is the
  exit point). In a junction clustered from several graph nodes, the stop lines are the
  cluster's outer approaches and the movements straight chords across it, so a cluster 30-65 m
  across (two close intersections, the signalled entries of a roundabout) needs an all-red
  above 6 s; the safety validator allows that where the geometry needs it; for a pedestrian
  group clearing, the crossing width at :data:`WALK_SPEED_M_S` (1.0 m/s; MUTCD 2009 section
  4E.06 uses 3.5 ft/s, ~1.07 m/s, to the far side of the traveled way);
* **stages**: 2 to 4 sets of mutually compatible groups, opposite approaches together
  (grouped by axis), split where they conflict, each pedestrian group in every stage it is
  compatible with (an exclusive pedestrian stage when there is none). A cluster whose
  straight chords would need more than 4 stages runs as sub-junctions split at its internal
  links (:func:`build_junction`), each with its own stop lines and at most 4 stages.

>>> g = crossroads_graph()
>>> m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
>>> len(m.groups), len(m.movements), m.stages
(4, 12, (('a:1', 'a:3'), ('a:2', 'a:4')))
>>> bool(m.conflicts("a:1", "a:2")), bool(m.conflicts("a:1", "a:3"))
(True, False)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx
import numpy as np
import shapely

from twin._errors import InputValidationError, UnknownAssetError

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "ALL_RED_MIN_S",
    "AMBER_S",
    "CROSSING_RADIUS_M",
    "ENTER_SPEED_M_S",
    "LANE_WIDTH_M",
    "LINK_MIN_M",
    "MAX_STAGES",
    "TURN_SPEED_M_S",
    "VEHICLE_LENGTH_M",
    "WALK_SPEED_M_S",
    "Crossing",
    "JunctionModel",
    "Movement",
    "SignalGroup",
    "approaches_by_junction",
    "approaches_of",
    "build_junction",
    "crossroads_graph",
    "junction_models",
    "nearest_ids",
]

EdgeKey = tuple[Hashable, Hashable, int]

#: Amber after every vehicle green (s): 3 s in built-up areas (IISR part 6; MUTCD 4D.26 3-6 s).
AMBER_S = 3.0
#: Smallest all-red between conflicting vehicle groups (s).
ALL_RED_MIN_S = 1.0
#: Length of the last vehicle that must clear the conflict point (m), as in ITE's formula.
VEHICLE_LENGTH_M = 6.0
#: Speed of a clearing turning vehicle at most (m/s, 25 km/h).
TURN_SPEED_M_S = 7.0
#: Speed at which an entering vehicle reaches the conflict point from its stop line (m/s).
ENTER_SPEED_M_S = 11.1
#: Pedestrian walking speed for clearance times (m/s).
WALK_SPEED_M_S = 1.0
#: Width of one traffic lane, for the width a crossing spans (m).
LANE_WIDTH_M = 3.5
#: Crossings this close to one of the junction's nodes belong to it (m).
CROSSING_RADIUS_M = 40.0
#: Depth of a crosswalk band; a stop line stands this far before it (m).
CROSSWALK_M = 4.0
#: Stop line and exit point, measured from the junction node along the edge (m).
STOP_BACK_M = 6.0
#: At most this many stages.
MAX_STAGES = 4
#: A link inside a cluster at least this long can carry a stop line of its own (m): the stop
#: line of the node it enters (:data:`STOP_BACK_M` before it) then stands clear of the exit
#: point of the node it leaves (:data:`STOP_BACK_M` after it).
LINK_MIN_M = 2 * STOP_BACK_M
#: At most this many internal links are cut when a cluster is tried as sub-junctions.
_MAX_CUTS = 8
#: A through movement feeding a link inside a cluster weighs this many turns.
_THROUGH_WEIGHT = 3
#: Two approaches face each other when their bearings differ by 180 deg within this (deg).
OPPOSED_TOLERANCE_DEG = 35.0

Turn = Literal["L", "T", "R"]


class _TooManyStages(InputValidationError):
    """The approaches of a junction need more than :data:`MAX_STAGES` stages."""


@dataclasses.dataclass(frozen=True)
class SignalGroup:
    """A signal group: the heads that always show the same aspect.

    Parameters
    ----------
    id : str
        ``approach:N.K`` (vehicles) or ``crossing:N.K`` (pedestrians).
    kind : {"vehicle", "pedestrian"}
    edge : tuple or None
        The approach edge ``(u, v, key)`` of a vehicle group.
    name : str
        Street name, or a description.
    speed_m_s : float
        Approach speed (vehicles) or walking speed (pedestrians).
    width_m : float
        Width to cross (pedestrian groups; 0 for vehicles).
    """

    id: str
    kind: Literal["vehicle", "pedestrian"]
    edge: EdgeKey | None
    name: str
    speed_m_s: float
    width_m: float = 0.0


@dataclasses.dataclass(frozen=True)
class Movement:
    """A movement from an approach to an exit of the junction."""

    id: str
    """``<approach id>><exit edge>``, e.g. ``approach:3.1>12_40_0``."""
    group: str
    """Signal group (the approach id)."""
    approach: EdgeKey
    exit: EdgeKey
    turn: Turn
    """``L``, ``T`` or ``R``."""
    entry_xy: tuple[float, float]
    """Stop line point (working CRS)."""
    exit_xy: tuple[float, float]
    """Exit point (working CRS)."""
    speed_m_s: float
    """Clearing speed."""


@dataclasses.dataclass(frozen=True)
class Crossing:
    """A pedestrian crossing of one arm of the junction."""

    id: str
    """``crossing:N.K``: the pedestrian signal group."""
    node: Hashable | None
    """The ``highway=crossing`` graph node, or ``None`` when assumed."""
    edges: tuple[EdgeKey, ...]
    """The drive edges of the arm it crosses (one or both directions)."""
    width_m: float
    """Carriageway width crossed (m)."""
    source: Literal["osm", "assumed"]
    xy: tuple[float, float]


@dataclasses.dataclass(frozen=True, eq=False)
class JunctionModel:
    """A signalised junction as its controller and its conflict monitor see it.

    Built by :func:`build_junction` (or :func:`junction_models` for a whole twin). Plain data:
    it pickles and round-trips through :meth:`to_dict` / :meth:`from_dict` (JSON), so the live
    layer's safety gate can hold the junctions it guards.

    Attributes
    ----------
    id : str
        Junction id.
    groups : tuple of SignalGroup
        Vehicle groups first, then pedestrian groups.
    movements : tuple of Movement
    crossings : tuple of Crossing
    conflict : numpy.ndarray
        ``(n_groups, n_groups)`` bool, symmetric: the groups may not be active together.
    intergreen_s : numpy.ndarray
        ``(n_groups, n_groups)`` float, clearing row to entering column (s); NaN where the
        groups do not conflict.
    stages : tuple of tuple of str
        Suggested stages (2-4), each a set of compatible group ids.
    reasons : dict
        ``(group, group) -> "movement x movement"``: why two groups conflict.
    permissive : tuple of (str, str)
        Pairs of groups whose movements meet but may run together, one giving way.
    parts : tuple of tuple
        The graph nodes of each sub-junction of a cluster controlled as several (see
        :func:`build_junction`); empty for a junction controlled as one.
    """

    id: str
    nodes: tuple[Hashable, ...]
    groups: tuple[SignalGroup, ...]
    movements: tuple[Movement, ...]
    crossings: tuple[Crossing, ...]
    conflict: np.ndarray
    intergreen_s: np.ndarray
    stages: tuple[tuple[str, ...], ...]
    reasons: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    permissive: tuple[tuple[str, str], ...] = ()
    parts: tuple[tuple[Hashable, ...], ...] = ()

    def __post_init__(self) -> None:
        n = len(self.groups)
        if self.conflict.shape != (n, n) or self.intergreen_s.shape != (n, n):
            msg = f"JunctionModel({self.id}): conflict and intergreen matrices must be {n}x{n}"
            raise InputValidationError(msg)
        ids = [g.id for g in self.groups]
        if len(set(ids)) != n:
            msg = f"JunctionModel({self.id}).groups: ids are not unique"
            raise InputValidationError(msg)
        object.__setattr__(self, "_index", {g: i for i, g in enumerate(ids)})

    # -- look-ups ---------------------------------------------------------------------------
    @property
    def group_ids(self) -> tuple[str, ...]:
        """Ids of the signal groups, in matrix order."""
        return tuple(g.id for g in self.groups)

    def index(self, group: str) -> int:
        """Row of ``group`` in the matrices; an unknown id lists the nearest valid ones."""
        idx: dict[str, int] = self._index  # type: ignore[attr-defined]
        if group not in idx:
            near = ", ".join(nearest_ids(group, idx))
            msg = f"junction {self.id}: no signal group {group!r} (nearest: {near})"
            raise UnknownAssetError(msg)
        return idx[group]

    def group(self, group: str) -> SignalGroup:
        """The :class:`SignalGroup` called ``group``."""
        return self.groups[self.index(group)]

    def conflicts(self, a: str, b: str) -> bool:
        """Whether groups ``a`` and ``b`` may never be active together."""
        return bool(self.conflict[self.index(a), self.index(b)])

    def intergreen(self, clearing: str, entering: str) -> float:
        """Intergreen from ``clearing`` to ``entering`` (s); NaN if they do not conflict."""
        return float(self.intergreen_s[self.index(clearing), self.index(entering)])

    def group_of_edge(self, edge: Sequence[Any]) -> str:
        """Vehicle group id of an approach edge ``(u, v, key)``."""
        key = (edge[0], edge[1], int(edge[2]) if len(edge) > 2 else 0)
        for g in self.groups:
            if g.edge is not None and _same_edge(g.edge, key):
                return g.id
        msg = f"junction {self.id}: edge {tuple(edge)!r} is not one of its approaches"
        raise UnknownAssetError(msg)

    @property
    def vehicle_groups(self) -> tuple[str, ...]:
        """Ids of the vehicle groups."""
        return tuple(g.id for g in self.groups if g.kind == "vehicle")

    @property
    def pedestrian_groups(self) -> tuple[str, ...]:
        """Ids of the pedestrian groups."""
        return tuple(g.id for g in self.groups if g.kind == "pedestrian")

    def clearance_s(self, group: str) -> float:
        """Pedestrian clearance of a crossing group: width / walking speed (s)."""
        g = self.group(group)
        return g.width_m / WALK_SPEED_M_S if g.kind == "pedestrian" else 0.0

    def describe(self, group: str) -> str:
        """``id (street)`` for messages."""
        g = self.group(group)
        return f"{g.id} ({g.name})" if g.name else g.id

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: groups, conflicts (pairs), intergreens, stages."""
        ids = self.group_ids
        pairs = [
            [ids[i], ids[j], round(float(self.intergreen_s[i, j]), 3)]
            for i in range(len(ids))
            for j in range(len(ids))
            if self.conflict[i, j]
        ]
        return {
            "kind": "junction_model",
            "version": 1,
            "junction": self.id,
            "nodes": [_jsonable(n) for n in self.nodes],
            "groups": [
                {
                    "id": g.id,
                    "kind": g.kind,
                    "edge": [_jsonable(x) for x in g.edge] if g.edge is not None else None,
                    "name": g.name,
                    "speed_m_s": round(g.speed_m_s, 3),
                    "width_m": round(g.width_m, 3),
                }
                for g in self.groups
            ],
            "intergreens": pairs,
            "stages": [list(s) for s in self.stages],
            "reasons": [[a, b, r] for (a, b), r in self.reasons.items()],
            "permissive": [list(p) for p in self.permissive],
            "parts": [[_jsonable(n) for n in p] for p in self.parts],
            "crossings": [
                {
                    "id": c.id,
                    "node": _jsonable(c.node),
                    "edges": [[_jsonable(x) for x in e] for e in c.edges],
                    "width_m": c.width_m,
                    "source": c.source,
                    "xy": list(c.xy),
                }
                for c in self.crossings
            ],
            "movements": [
                {
                    "id": m.id,
                    "group": m.group,
                    "approach": [_jsonable(x) for x in m.approach],
                    "exit": [_jsonable(x) for x in m.exit],
                    "turn": m.turn,
                    "entry_xy": list(m.entry_xy),
                    "exit_xy": list(m.exit_xy),
                    "speed_m_s": m.speed_m_s,
                }
                for m in self.movements
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JunctionModel:
        """Inverse of :meth:`to_dict`."""
        try:
            groups = tuple(
                SignalGroup(
                    g["id"],
                    g["kind"],
                    _edge(g["edge"]) if g.get("edge") is not None else None,
                    g.get("name") or "",
                    float(g["speed_m_s"]),
                    float(g.get("width_m", 0.0)),
                )
                for g in data["groups"]
            )
            idx = {g.id: i for i, g in enumerate(groups)}
            n = len(groups)
            conflict = np.zeros((n, n), dtype=bool)
            inter = np.full((n, n), np.nan)
            for a, b, s in data["intergreens"]:
                conflict[idx[a], idx[b]] = True
                inter[idx[a], idx[b]] = float(s)
            return cls(
                id=str(data["junction"]),
                nodes=tuple(data.get("nodes", ())),
                groups=groups,
                movements=tuple(
                    Movement(
                        m["id"],
                        m["group"],
                        _edge(m["approach"]),
                        _edge(m["exit"]),
                        m["turn"],
                        (float(m["entry_xy"][0]), float(m["entry_xy"][1])),
                        (float(m["exit_xy"][0]), float(m["exit_xy"][1])),
                        float(m["speed_m_s"]),
                    )
                    for m in data.get("movements", ())
                ),
                crossings=tuple(
                    Crossing(
                        c["id"],
                        c.get("node"),
                        tuple(_edge(e) for e in c["edges"]),
                        float(c["width_m"]),
                        c["source"],
                        (float(c["xy"][0]), float(c["xy"][1])),
                    )
                    for c in data.get("crossings", ())
                ),
                conflict=conflict,
                intergreen_s=inter,
                stages=tuple(tuple(s) for s in data["stages"]),
                reasons={(a, b): r for a, b, r in data.get("reasons", ())},
                permissive=tuple((a, b) for a, b in data.get("permissive", ())),
                parts=tuple(tuple(p) for p in data.get("parts", ())),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            msg = f"JunctionModel.from_dict: malformed junction model ({exc!r})"
            raise InputValidationError(msg) from None

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict())


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


def _edge(e: Sequence[Any]) -> EdgeKey:
    return (e[0], e[1], int(e[2]) if len(e) > 2 else 0)


def _same_edge(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return str(a[0]) == str(b[0]) and str(a[1]) == str(b[1]) and int(a[2]) == int(b[2])


def nearest_ids(name: str, valid: Iterable[str], *, n: int = 5) -> list[str]:
    """The ``n`` valid ids closest to ``name`` (by string similarity, then numerically).

    >>> nearest_ids("junction:13", ["junction:1", "junction:12", "junction:130", "approach:1"])
    ['junction:130', 'junction:1', 'junction:12', 'approach:1']
    """
    import difflib

    pool = list(dict.fromkeys(valid))

    def num(s: str) -> float:
        digits = "".join(c for c in s.rsplit(":", 1)[-1] if c.isdigit() or c == ".")
        try:
            return float(digits)
        except ValueError:
            return math.inf

    target = num(name)
    return sorted(
        pool,
        key=lambda s: (
            -round(difflib.SequenceMatcher(None, name, s).ratio(), 2),
            abs(num(s) - target) if math.isfinite(target) else 0.0,
            s,
        ),
    )[:n]


# ------------------------------------------------------------------------------------------------
# geometry
# ------------------------------------------------------------------------------------------------
def _xy(graph: nx.MultiDiGraph, n: Hashable) -> np.ndarray:
    d = graph.nodes[n]
    return np.array([float(d["x"]), float(d["y"])])


def _line(graph: nx.MultiDiGraph, e: EdgeKey) -> shapely.LineString:
    geom = graph.edges[e].get("geometry")
    if isinstance(geom, shapely.LineString) and geom.length > 0:
        return geom
    return shapely.LineString([_xy(graph, e[0]), _xy(graph, e[1])])


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list | tuple) else value


def _num(value: Any, default: float) -> float:
    try:
        x = float(_first(value))
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) and x > 0 else default


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 0 else np.array([0.0, 1.0])


def _bearing(v: np.ndarray) -> float:
    return math.degrees(math.atan2(v[0], v[1])) % 360.0


def _two_way(graph: nx.MultiDiGraph, e: EdgeKey) -> bool:
    seg = graph.edges[e].get("segment")
    return any(
        d.get("segment") == seg for d in graph.get_edge_data(e[1], e[0], default={}).values()
    )


def _end_point(
    graph: nx.MultiDiGraph, e: EdgeKey, *, at_end: bool, drive_on: str
) -> tuple[np.ndarray, np.ndarray]:
    """Stop line (``at_end``) or exit point of an edge, on its side of the road; and heading."""
    line = _line(graph, e)
    length = float(line.length)
    back = min(STOP_BACK_M, 0.45 * length)
    pos = length - back if at_end else back

    def at(d: float) -> np.ndarray:
        return np.asarray(line.interpolate(min(max(d, 0.0), length)).coords[0][:2])

    p = at(pos)
    q, r = at(pos + 1.0), at(pos - 1.0)
    heading = _unit(q - r)
    if _two_way(graph, e):
        lanes = _num(graph.edges[e].get("lanes_dir", graph.edges[e].get("lanes")), 1.0)
        right = np.array([heading[1], -heading[0]])  # heading turned clockwise
        side = 1.0 if drive_on == "right" else -1.0
        p = p + side * right * LANE_WIDTH_M * max(lanes, 1.0) / 2.0
    return p, heading


def _turn(h_in: np.ndarray, h_out: np.ndarray) -> Turn:
    delta = (_bearing(h_out) - _bearing(h_in) + 180.0) % 360.0 - 180.0
    if abs(delta) < 45.0:
        return "T"
    return "R" if delta > 0 else "L"


def _angle(c: np.ndarray, p: np.ndarray) -> float:
    return math.atan2(p[1] - c[1], p[0] - c[0]) % (2 * math.pi)


def _between(a: float, x: float, b: float) -> bool:
    """Whether angle ``x`` lies strictly inside the counter-clockwise arc from ``a`` to ``b``."""
    span = (b - a) % (2 * math.pi)
    off = (x - a) % (2 * math.pi)
    return 0.0 < off < span


def _crosses(c: np.ndarray, m: Movement, n: Movement) -> bool:
    """Whether the chords of two movements with four distinct ends interleave around ``c``."""
    a0, a1 = _angle(c, np.asarray(m.entry_xy)), _angle(c, np.asarray(m.exit_xy))
    b0, b1 = _angle(c, np.asarray(n.entry_xy)), _angle(c, np.asarray(n.exit_xy))
    return _between(a0, b0, a1) != _between(a0, b1, a1)


def _conflict_point(m: Movement, n: Movement) -> np.ndarray:
    if m.exit == n.exit:
        return np.asarray(m.exit_xy)
    lm = shapely.LineString([m.entry_xy, m.exit_xy])
    ln = shapely.LineString([n.entry_xy, n.exit_xy])
    hit = lm.intersection(ln)
    if not hit.is_empty and hit.geom_type == "Point":
        return np.asarray(hit.coords[0][:2])
    a, b = shapely.ops.nearest_points(lm, ln)
    mid: np.ndarray = (np.asarray(a.coords[0][:2]) + np.asarray(b.coords[0][:2])) / 2.0
    return mid


def _all_red(s_clear_m: float, speed_m_s: float, s_enter_m: float = 0.0) -> float:
    red = (s_clear_m + VEHICLE_LENGTH_M) / max(speed_m_s, 1.0) - s_enter_m / ENTER_SPEED_M_S
    return max(ALL_RED_MIN_S, math.ceil(red * 10.0 - 1e-9) / 10.0)


# ------------------------------------------------------------------------------------------------
# building
# ------------------------------------------------------------------------------------------------
def approaches_of(graph: nx.MultiDiGraph, nodes: Iterable[Hashable]) -> list[tuple[str, EdgeKey]]:
    """Edges entering ``nodes`` from outside, with ids ``a:<u>`` (for hand-made graphs)."""
    inside = set(nodes)
    return [
        (f"a:{u}", (u, v, k))
        for v in inside
        for u, _, k in graph.in_edges(v, keys=True)
        if u not in inside
    ]


def build_junction(
    graph: nx.MultiDiGraph,
    junction_id: str,
    *,
    nodes: Iterable[Hashable],
    approaches: Sequence[tuple[str, EdgeKey]],
    crossings: Sequence[Hashable] = (),
    assume_crossings: bool = False,
    names: Mapping[str, str] | None = None,
    drive_on: Literal["right", "left"] = "right",
) -> JunctionModel:
    """Build the model of one junction from its graph geometry.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Drive graph in a metric CRS: nodes ``x``, ``y``; edges ``length``, optional
        ``geometry``, ``speed_kph``, ``lanes`` (whole way), ``lanes_dir``, ``segment``.
    junction_id : str
        Id of the junction (``junction:N``).
    nodes : iterable
        The junction's graph nodes.
    approaches : sequence of (str, edge key)
        Approach ids (the vehicle signal groups) and their edges ``(u, v, key)``.
    crossings : sequence of nodes
        ``highway=crossing`` nodes near the junction (others are ignored).
    assume_crossings : bool
        With no crossing given, assume one on each arm (``source="assumed"``).
    names : mapping, optional
        Street name of each approach id (for messages).
    drive_on : {"right", "left"}
        Side of the road traffic keeps to.

    Returns
    -------
    JunctionModel
        A cluster of several nodes whose approaches, taken as one junction, would need more
        than :data:`MAX_STAGES` stages is controlled as **sub-junctions** when it can be: its
        nodes are split at internal links of at least :data:`LINK_MIN_M` (fewest cuts first;
        nodes with no internal link between them are apart anyway) into parts that each need
        at most :data:`MAX_STAGES` stages; an internal link entering a part becomes a signal
        group of its own (``link:N.K``, with its stop line), groups of different parts never
        conflict, and the parts change stage together on the common cycle, each running its
        own stages in order (:attr:`JunctionModel.parts` lists them). This is how closely
        spaced intersections and diamond interchanges are run from one controller on one cycle
        (Traffic Signal Timing Manual, FHWA-HOP-08-024, 2008), each intersection keeping its
        own stop lines and its own conflicts; the validator checks the whole plan against the
        conflicts and intergreens of every part.

    Raises
    ------
    InputValidationError
        If an approach is not an edge of the graph, or the junction (and, for a cluster, any
        split of it into sub-junctions) needs more than :data:`MAX_STAGES` stages.
    """
    members = [n for n in nodes if n in graph.nodes]
    if not members:
        msg = f"junction {junction_id}: none of its nodes is in the graph"
        raise InputValidationError(msg)
    names = dict(names or {})
    apps: list[tuple[str, EdgeKey]] = []
    for aid, e in approaches:
        key = _edge(e)
        if not graph.has_edge(*key):
            msg = f"junction {junction_id}: approach {aid} edge {key!r} is not in the graph"
            raise InputValidationError(msg)
        apps.append((aid, key))
    try:
        return _build(
            graph, junction_id, members, apps, crossings, assume_crossings, names, drive_on
        )
    except _TooManyStages as exc:
        if len(members) < 2:
            msg = f"{exc}, at one node (no sub-junctions to run apart)"
            raise _TooManyStages(msg) from None
        model = _split_cluster(
            graph, junction_id, members, apps, crossings, assume_crossings, names, drive_on
        )
        if model is None:
            msg = (
                f"{exc}, and as sub-junctions too (split at its internal links of "
                f"{LINK_MIN_M:g} m or more, some part needs more than {MAX_STAGES})"
            )
            raise _TooManyStages(msg) from None
        return model


def _build(
    graph: nx.MultiDiGraph,
    junction_id: str,
    members: Sequence[Hashable],
    apps: Sequence[tuple[str, EdgeKey]],
    crossings: Sequence[Hashable],
    assume_crossings: bool,
    names: Mapping[str, str],
    drive_on: Literal["right", "left"],
) -> JunctionModel:
    """:func:`build_junction` on checked inputs, as one junction (one set of stages)."""
    inside = set(members)
    exits = sorted(
        {
            (u, v, k)
            for u in inside
            for _, v, k in graph.out_edges(u, keys=True)
            if v not in inside and u != v
        },
        key=repr,
    )
    centre = np.mean([_xy(graph, n) for n in members], axis=0)
    internal = graph.subgraph(inside)

    def speed(e: EdgeKey) -> float:
        return _num(graph.edges[e].get("speed_kph"), 50.0) / 3.6

    # movements
    ends: dict[EdgeKey, tuple[np.ndarray, np.ndarray]] = {}
    for _, e in apps:
        ends[e] = _end_point(graph, e, at_end=True, drive_on=drive_on)
    for x in exits:
        ends[x] = _end_point(graph, x, at_end=False, drive_on=drive_on)
    movements: list[Movement] = []
    for aid, a in apps:
        seg_a = graph.edges[a].get("segment")
        for x in exits:
            if x[1] == a[0] and graph.edges[x].get("segment") == seg_a:
                continue  # U-turn back along the same street
            if a[1] != x[0] and not nx.has_path(internal, a[1], x[0]):
                continue
            turn = _turn(ends[a][1], ends[x][1])
            v = speed(a) if turn == "T" else min(speed(a), TURN_SPEED_M_S)
            movements.append(
                Movement(
                    f"{aid}>{x[0]}_{x[1]}_{x[2]}",
                    aid,
                    a,
                    x,
                    turn,
                    (float(ends[a][0][0]), float(ends[a][0][1])),
                    (float(ends[x][0][0]), float(ends[x][0][1])),
                    float(v),
                )
            )
    # crossings
    arm_edges = [e for _, e in apps] + list(exits)
    found: list[Crossing] = []
    seen_arms: set[frozenset[EdgeKey]] = set()

    def arm_of(e: EdgeKey) -> tuple[EdgeKey, ...]:
        seg = graph.edges[e].get("segment")
        twin = [
            (e[1], e[0], k)
            for k, d in graph.get_edge_data(e[1], e[0], default={}).items()
            if d.get("segment") == seg
        ]
        return (e, *twin)

    def width(e: EdgeKey) -> float:
        d = graph.edges[e]
        w = _num(d.get("width"), 0.0)
        if w > 0:
            return w
        lanes = _num(d.get("lanes"), 1.0)
        if not _two_way(graph, e):
            lanes = _num(d.get("lanes_dir", d.get("lanes")), 1.0)
        return LANE_WIDTH_M * max(lanes, 1.0)

    lines = {e: _line(graph, e) for e in arm_edges}
    crossing_nodes = [
        c
        for c in crossings
        if c in graph.nodes
        and min(float(np.hypot(*(_xy(graph, c) - _xy(graph, n)))) for n in members)
        <= CROSSING_RADIUS_M
    ]
    for c in sorted(crossing_nodes, key=str):
        p = shapely.Point(_xy(graph, c))
        dist = {e: float(line.distance(p)) for e, line in lines.items()}
        if not dist:
            break
        best = min(dist, key=lambda e: (dist[e], repr(e)))
        if dist[best] > 15.0:
            continue
        arm = arm_of(best)
        arm_key = frozenset(arm)
        if arm_key in seen_arms:
            continue
        seen_arms.add(arm_key)
        found.append(
            Crossing(
                "",
                c,
                arm,
                round(width(best), 2),
                "osm",
                (float(p.x), float(p.y)),
            )
        )
    if not found and assume_crossings:
        for _, a in apps:
            arm = arm_of(a)
            arm_key = frozenset(arm)
            if arm_key in seen_arms:
                continue
            seen_arms.add(arm_key)
            line = lines[a]
            pt = line.interpolate(max(line.length - STOP_BACK_M + CROSSWALK_M / 2, 0.0))
            found.append(Crossing("", None, arm, round(width(a), 2), "assumed", (pt.x, pt.y)))
    num = junction_id.split(":", 1)[-1]
    dropped: set[int] = set()
    while True:
        kept = [c for i, c in enumerate(found) if i not in dropped]
        crossings_out = tuple(
            dataclasses.replace(c, id=f"crossing:{num}.{i}") for i, c in enumerate(kept)
        )
        model, homeless = _assemble(
            junction_id, members, apps, names, graph, movements, crossings_out, ends, speed, centre
        )
        if not homeless:
            return model
        ids = [c.id for c in crossings_out]
        if any(crossings_out[ids.index(h)].source != "assumed" for h in homeless):
            msg = (
                f"junction {junction_id}: crossings {homeless} fit in no stage and there is no "
                f"room for a pedestrian stage ({MAX_STAGES} stages already)"
            )
            raise InputValidationError(msg)
        # an assumed crossing that fits nowhere is not assumed
        gone = {ids.index(h) for h in homeless}
        kept_idx = [i for i in range(len(found)) if i not in dropped]
        dropped |= {kept_idx[i] for i in gone}


def _assemble(
    junction_id: str,
    members: Sequence[Hashable],
    apps: Sequence[tuple[str, EdgeKey]],
    names: Mapping[str, str],
    graph: nx.MultiDiGraph,
    movements: Sequence[Movement],
    crossings_out: tuple[Crossing, ...],
    ends: Mapping[EdgeKey, tuple[np.ndarray, np.ndarray]],
    speed: Any,
    centre: np.ndarray,
) -> tuple[JunctionModel, list[str]]:
    """Groups, conflict and intergreen matrices and stages, given the crossings."""
    # groups
    groups: list[SignalGroup] = [
        SignalGroup(
            aid,
            "vehicle",
            a,
            names.get(aid, str(_first(graph.edges[a].get("name")) or "")),
            speed(a),
        )
        for aid, a in apps
    ]
    groups += [
        SignalGroup(
            c.id,
            "pedestrian",
            None,
            f"crossing of {names.get(_group_on(apps, c), '') or 'arm'}",
            WALK_SPEED_M_S,
            c.width_m,
        )
        for c in crossings_out
    ]
    gid = {g.id: i for i, g in enumerate(groups)}
    n = len(groups)
    conflict = np.zeros((n, n), dtype=bool)
    inter = np.full((n, n), np.nan)
    reasons: dict[tuple[str, str], str] = {}
    permissive: set[tuple[str, str]] = set()
    bearing = {aid: _bearing(ends[a][1]) for aid, a in apps}

    def opposed(a: str, b: str) -> bool:
        d = abs((bearing[a] - bearing[b] + 180.0) % 360.0 - 180.0)
        return d >= 180.0 - OPPOSED_TOLERANCE_DEG

    def note(i: str, j: str, value: float, why: str) -> None:
        gi, gj = gid[i], gid[j]
        conflict[gi, gj] = conflict[gj, gi] = True
        if not value <= inter[gi, gj]:  # NaN or smaller
            inter[gi, gj] = value
        reasons.setdefault((i, j), why)
        reasons.setdefault((j, i), why)

    for ai, m in enumerate(movements):
        for nm in movements[ai + 1 :]:
            if m.group == nm.group:
                continue
            merge = m.exit == nm.exit
            distinct = len({m.entry_xy, m.exit_xy, nm.entry_xy, nm.exit_xy}) == 4
            if not merge and not (distinct and _crosses(centre, m, nm)):
                continue
            if opposed(m.group, nm.group) and "L" in (m.turn, nm.turn):
                permissive.add((m.group, nm.group))
                continue
            p = _conflict_point(m, nm)
            why = f"{m.id} x {nm.id}"
            for clear, enter in ((m, nm), (nm, m)):
                s_c = float(np.hypot(*(p - np.asarray(clear.entry_xy))))
                s_e = float(np.hypot(*(p - np.asarray(enter.entry_xy))))
                red = _all_red(s_c, clear.speed_m_s, s_e)
                note(clear.group, enter.group, AMBER_S + red, why)
    for c in crossings_out:
        arm = set(c.edges)
        for m in movements:
            if m.approach in arm:
                s_c = CROSSWALK_M
            elif m.exit in arm and m.turn == "T":
                s_c = float(np.hypot(*np.subtract(m.exit_xy, m.entry_xy))) + CROSSWALK_M
            else:
                if m.exit in arm:
                    permissive.add((m.group, c.id))
                continue
            why = f"{m.id} x {c.id}"
            note(m.group, c.id, AMBER_S + _all_red(s_c, m.speed_m_s), why)
            gi, gj = gid[c.id], gid[m.group]
            inter[gi, gj] = math.ceil(c.width_m / WALK_SPEED_M_S * 10.0 - 1e-9) / 10.0
    stages, homeless = _stages(
        junction_id, [aid for aid, _ in apps], bearing, conflict, gid, groups
    )
    model = JunctionModel(
        id=junction_id,
        nodes=tuple(members),
        groups=tuple(groups),
        movements=tuple(movements),
        crossings=crossings_out,
        conflict=conflict,
        intergreen_s=inter,
        stages=stages,
        reasons=reasons,
        permissive=tuple(sorted(permissive)),
    )
    return model, homeless


def _split_cluster(
    graph: nx.MultiDiGraph,
    junction_id: str,
    members: Sequence[Hashable],
    apps: Sequence[tuple[str, EdgeKey]],
    crossings: Sequence[Hashable],
    assume_crossings: bool,
    names: Mapping[str, str],
    drive_on: Literal["right", "left"],
) -> JunctionModel | None:
    """A cluster controlled as sub-junctions of at most :data:`MAX_STAGES` stages, or None.

    The cluster's nodes are split at internal links of at least :data:`LINK_MIN_M`: each part
    is a junction of its own (:func:`_build`), whose approaches are the cluster's approaches
    that enter it and the internal links that enter it from another part (signal groups
    ``link:N.K``, with their own stop lines); its exits, the cluster's exits and the internal
    links to another part. Partitions are tried with the fewest links cut first; the first
    whose every part needs at most :data:`MAX_STAGES` stages is kept. A crossing mapped on an
    internal link (data, not assumed) would be crossed by the traffic of two parts: such a
    partition is refused.
    """
    inside = set(members)
    num = junction_id.split(":", 1)[-1]
    internal = sorted(
        ((u, v, k) for u, v, k in graph.subgraph(inside).edges(keys=True) if u != v), key=repr
    )
    link_ids = {e: f"link:{num}.{i}" for i, e in enumerate(internal)}
    fixed = nx.Graph()
    fixed.add_nodes_from(members)
    length: dict[frozenset[Hashable], float] = {}
    for u, v, k in internal:
        pair = frozenset((u, v))
        d = _num(graph.edges[u, v, k].get("length"), float(_line(graph, (u, v, k)).length))
        length[pair] = min(length.get(pair, math.inf), d)
    for pair, d in length.items():
        if d < LINK_MIN_M:
            fixed.add_edge(*pair)
    comp = {n: i for i, c in enumerate(nx.connected_components(fixed)) for n in c}
    cuttable = sorted(
        (tuple(sorted(p, key=repr)) for p, d in length.items() if d >= LINK_MIN_M),
        key=repr,
    )
    cuttable = [p for p in cuttable if comp[p[0]] != comp[p[1]]]
    node_xy = {n: _xy(graph, n) for n in members}
    crossing_xy = {c: _xy(graph, c) for c in crossings if c in graph.nodes}
    seen: set[frozenset[frozenset[Hashable]]] = set()
    built: dict[tuple[frozenset[Hashable], tuple[Hashable, ...]], JunctionModel | None] = {}
    for r in range(min(len(cuttable), _MAX_CUTS) + 1):  # 0: parts with no link between them
        for cut in itertools.combinations(cuttable, r):
            kept = nx.Graph(fixed)
            kept.add_edges_from(p for p in cuttable if p not in cut)
            parts = sorted(
                (sorted(c, key=repr) for c in nx.connected_components(kept)),
                key=lambda c: repr(c[0]),
            )
            key = frozenset(frozenset(p) for p in parts)
            if len(parts) < 2 or key in seen:
                continue
            seen.add(key)
            owner: dict[Hashable, int] = {}
            for c, xy in crossing_xy.items():  # each crossing to the part nearest to it
                dist = [min(float(np.hypot(*(xy - node_xy[n]))) for n in p) for p in parts]
                owner[c] = int(np.argmin(dist))
            models = []
            for i, part in enumerate(parts):
                ps = set(part)
                part_apps = [(aid, e) for aid, e in apps if e[1] in ps]
                part_apps += [(link_ids[e], e) for e in internal if e[1] in ps and e[0] not in ps]
                part_names = dict(names)
                for e in internal:
                    part_names.setdefault(
                        link_ids[e], str(_first(graph.edges[e].get("name")) or "")
                    )
                near = [c for c, o in owner.items() if o == i]
                key_part = (frozenset(part), tuple(near))
                if key_part not in built:  # a part recurs in many partitions: build it once
                    try:
                        sub = _build(
                            graph,
                            junction_id,
                            part,
                            part_apps,
                            near,
                            assume_crossings,
                            part_names,
                            drive_on,
                        )
                    except InputValidationError:
                        sub = None
                    if sub is not None and any(
                        c.source == "osm"
                        and any(e[0] in inside and e[1] in inside for e in c.edges)
                        for c in sub.crossings
                    ):
                        sub = None
                    built[key_part] = sub
                sub = built[key_part]
                if sub is None:
                    break
                models.append(sub)
            else:
                return _merge(junction_id, members, models, [tuple(p) for p in parts])
    return None


def _merge(
    junction_id: str,
    members: Sequence[Hashable],
    subs: Sequence[JunctionModel],
    parts: Sequence[tuple[Hashable, ...]],
) -> JunctionModel:
    """One junction model of sub-junctions that change stage together (a cluster controller).

    Groups of different parts never conflict: their conflict areas are apart. The stages are
    :func:`_compose`'s; the crossings are renumbered ``crossing:N.K`` over the whole cluster.
    """
    num = junction_id.split(":", 1)[-1]
    rename: list[dict[str, str]] = []
    k = 0
    for sub in subs:
        ren = {}
        for c in sub.pedestrian_groups:
            ren[c] = f"crossing:{num}.{k}"
            k += 1
        rename.append(ren)

    def rn(i: int, gid: str) -> str:
        return rename[i].get(gid, gid)

    vehicle = [(i, g) for i, sub in enumerate(subs) for g in sub.groups if g.kind == "vehicle"]
    peds = [(i, g) for i, sub in enumerate(subs) for g in sub.groups if g.kind == "pedestrian"]
    groups = [dataclasses.replace(g, id=rn(i, g.id)) for i, g in vehicle + peds]
    index = {g.id: n for n, g in enumerate(groups)}
    n = len(groups)
    conflict = np.zeros((n, n), dtype=bool)
    inter = np.full((n, n), np.nan)
    reasons: dict[tuple[str, str], str] = {}
    permissive: list[tuple[str, str]] = []
    for i, sub in enumerate(subs):
        rows = [index[rn(i, g)] for g in sub.group_ids]
        conflict[np.ix_(rows, rows)] = sub.conflict
        inter[np.ix_(rows, rows)] = sub.intergreen_s
        for (a, b), why in sub.reasons.items():
            reasons[(rn(i, a), rn(i, b))] = " x ".join(rn(i, t) for t in why.split(" x "))
        permissive += [(rn(i, a), rn(i, b)) for a, b in sub.permissive]
    seqs = _compose(subs, parts)
    stages = [
        tuple(rn(i, g) for i, sub in enumerate(subs) for g in sub.group_ids if g in seqs[i][k])
        for k in range(len(seqs[0]))
    ]
    return JunctionModel(
        id=junction_id,
        nodes=tuple(members),
        groups=tuple(groups),
        movements=tuple(m for sub in subs for m in sub.movements),
        crossings=tuple(
            dataclasses.replace(c, id=rn(i, c.id))
            for i, sub in enumerate(subs)
            for c in sub.crossings
        ),
        conflict=conflict,
        intergreen_s=inter,
        stages=tuple(stages),
        reasons=reasons,
        permissive=tuple(sorted(permissive)),
        parts=tuple(parts),
    )


def _compose(
    subs: Sequence[JunctionModel], parts: Sequence[tuple[Hashable, ...]]
) -> list[list[set[str]]]:
    """The groups of each part green in each stage of the cluster.

    Stage ``k`` of the cluster (``n`` stages, the most of a part) runs stage
    ``order[floor(k n_p / n)]`` of a part of ``n_p`` stages, so that each part runs each of
    its own stages. A link inside the cluster stores a few cars only, so the orders are chosen
    (all of them for up to 2,000 combinations, else part by part) to show each link green in
    as many as possible of the stages that feed it (a group of the part upstream with a
    movement into it, a through movement weighing :data:`_THROUGH_WEIGHT` turns: the main
    road's platoon) and red in as few; and each link is then green in every stage where no
    group of its part that conflicts with it is active, as the interior approaches of a diamond
    interchange are kept clear.
    """
    n = max(len(sub.stages) for sub in subs)
    where = {node: i for i, p in enumerate(parts) for node in p}
    # (part, link group, feeding part, weight of each feeding group)
    links: list[tuple[int, str, int, dict[str, int]]] = []
    for q, sub in enumerate(subs):
        for g in sub.groups:
            e = g.edge
            if e is None or where.get(e[0], q) == q:
                continue
            p = where[e[0]]
            feeders: dict[str, int] = {}
            for m in subs[p].movements:
                if _same_edge(m.exit, e):
                    w = _THROUGH_WEIGHT if m.turn == "T" else 1
                    feeders[m.group] = max(feeders.get(m.group, 0), w)
            links.append((q, g.id, p, feeders))

    def seq(i: int, order: Sequence[int]) -> list[set[str]]:
        sub = subs[i]
        if not sub.stages:
            return [set() for _ in range(n)]
        out = [set(sub.stages[order[k * len(sub.stages) // n]]) for k in range(n)]
        for q, lg, _, _ in links:
            if q != i:
                continue
            for stage in out:
                if not any(sub.conflicts(lg, g) for g in stage):
                    stage.add(lg)
        return out

    def score(seqs: Mapping[int, list[set[str]]]) -> int:
        total = 0
        for q, lg, p, feeders in links:
            if q not in seqs or p not in seqs:
                continue
            for k in range(n):
                w = max((feeders.get(g, 0) for g in seqs[p][k]), default=0)
                total += w if lg in seqs[q][k] else -w
        return total

    orders = [list(itertools.permutations(range(len(sub.stages)))) or [()] for sub in subs]
    chosen = {0: seq(0, tuple(range(len(subs[0].stages))))}
    if math.prod(len(o) for o in orders[1:]) <= 2000:
        best: tuple[int, dict[int, list[set[str]]]] | None = None
        for combo in itertools.product(*orders[1:]):
            trial = dict(chosen)
            trial.update({i + 1: seq(i + 1, o) for i, o in enumerate(combo)})
            value = score(trial)
            if best is None or value > best[0]:
                best = (value, trial)
        assert best is not None
        chosen = best[1]
    else:
        for i in range(1, len(subs)):
            options = [seq(i, o) for o in orders[i]]
            values = [score({**chosen, i: opt}) for opt in options]
            chosen[i] = options[values.index(max(values))]
    return [chosen[i] for i in range(len(subs))]


def _group_on(apps: Sequence[tuple[str, EdgeKey]], c: Crossing) -> str:
    for aid, a in apps:
        if a in c.edges:
            return aid
    return ""


def _stages(
    jid: str,
    vehicle: Sequence[str],
    bearing: Mapping[str, float],
    conflict: np.ndarray,
    gid: Mapping[str, int],
    groups: Sequence[SignalGroup],
) -> tuple[tuple[tuple[str, ...], ...], list[str]]:
    """Stages (fewest, opposite approaches together), then pedestrians; and those left out."""
    from twin.scenarios.signals import group_by_axis

    if not vehicle:
        return (), []
    # vertices in axis order, so that opposite approaches are tried in one stage first
    order = [
        str(k[0]) for axis in group_by_axis({(a, 0, 0): bearing[a] for a in vehicle}) for k in axis
    ]
    stages = _colour(order, lambda a, b: bool(conflict[gid[a], gid[b]]))
    if len(stages) > MAX_STAGES:
        msg = f"junction {jid}: its approaches need {len(stages)} stages, more than {MAX_STAGES}"
        raise _TooManyStages(msg)
    peds = [g.id for g in groups if g.kind == "pedestrian"]
    homeless = []
    for p in peds:
        fits = [s for s in stages if not any(conflict[gid[p], gid[b]] for b in s if b in vehicle)]
        for s in fits:
            s.append(p)
        if not fits:
            homeless.append(p)
    if homeless and len(stages) < MAX_STAGES:
        stages.append(homeless)
        homeless = []
    return tuple(tuple(s) for s in stages), homeless


def _colour(order: Sequence[str], clash: Any) -> list[list[str]]:
    """Fewest stages (colours) with no clash inside one: backtracking over ``order``."""
    n = len(order)
    for k in range(1, n + 1):
        colour: dict[str, int] = {}

        def place(i: int, k: int = k, colour: dict[str, int] = colour) -> bool:
            if i == n:
                return True
            a = order[i]
            used = max(colour.values(), default=-1)
            for c in range(min(k, used + 2)):  # a new colour only in order: no symmetric tries
                if all(colour[b] != c or not clash(a, b) for b in order[:i]):
                    colour[a] = c
                    if place(i + 1):
                        return True
                    del colour[a]
            return False

        if place(0):
            out: list[list[str]] = [[] for _ in range(max(colour.values()) + 1)]
            for a in order:
                out[colour[a]].append(a)
            return out
    return [[a] for a in order]


def junction_models(
    tw: Twin,
    *,
    junctions: Iterable[str] | None = None,
    assume_crossings: bool | None = None,
    skipped: dict[str, str] | None = None,
) -> dict[str, JunctionModel]:
    """Junction models of a twin's signalised junctions.

    Parameters
    ----------
    tw : twin.model.Twin
    junctions : iterable of str, optional
        Junction ids (default all); an unknown id raises with the nearest valid ones.
    assume_crossings : bool, optional
        Assume a crossing on each arm where the data has none; default: only when the data
        holds no ``highway=crossing`` node at all (a municipal set), so that an OSM extract's
        mapping is trusted.
    skipped : dict, optional
        Filled with the junctions left out (fewer than two approaches, more than four stages
        even as sub-junctions) and why.

    Returns
    -------
    dict of str to JunctionModel
        Approaches already claimed by an earlier junction (two clusters sharing an edge) stay
        with the first, as in :func:`twin.scenarios.network.signal_plans`.
    """
    reg_j = tw.registry["junction"]
    app = tw.registry["approach"]
    valid = [str(j) for j in reg_j.index]
    wanted = valid if junctions is None else [str(j) for j in junctions]
    for j in wanted:
        if j not in set(valid):
            close = ", ".join(nearest_ids(j, valid))
            msg = (
                f"junction {j!r} is not a signalised junction of {tw.city.name} (nearest: {close})"
            )
            raise UnknownAssetError(msg)
    graph = tw.drive
    crossing_nodes = [n for n, h in tw.graph.nodes(data="highway") if h == "crossing"]
    assume = (not crossing_nodes) if assume_crossings is None else bool(assume_crossings)
    by_j = approaches_by_junction(app)
    xy = (
        np.array([_xy(tw.graph, n) for n in crossing_nodes]) if crossing_nodes else np.zeros((0, 2))
    )
    tree = shapely.STRtree(shapely.points(xy)) if len(xy) else None
    taken: set[EdgeKey] = set()
    out: dict[str, JunctionModel] = {}
    skipped = {} if skipped is None else skipped
    wanted_set = set(wanted)
    for jid in valid:  # in registry order, so shared approaches go where signal_plans puts them
        rows = by_j.get(jid)
        apps: list[tuple[str, EdgeKey]] = []
        names: dict[str, str] = {}
        for r in rows or ():
            key = (_node(r.u), _node(r.v), int(r.key))
            if key in taken or not graph.has_edge(*key):
                continue
            apps.append((str(r.id), key))
            names[str(r.id)] = str(r.name) if isinstance(r.name, str) else ""
        taken.update(k for _, k in apps)
        if jid not in wanted_set:
            continue
        if not apps:
            skipped[jid] = "0 approaches"
            continue
        nodes = [_node(x) for x in str(reg_j.loc[jid, "nodes"] or "").split()]
        near: list[Hashable] = []
        if tree is not None:
            pts = shapely.points(np.array([_xy(graph, n) for n in nodes if n in graph.nodes]))
            _, hit = tree.query(pts, predicate="dwithin", distance=CROSSING_RADIUS_M)
            near = sorted({crossing_nodes[h] for h in hit}, key=str)
        try:
            out[jid] = build_junction(
                graph,
                jid,
                nodes=nodes,
                approaches=apps,
                crossings=near,
                assume_crossings=assume,
                names=names,
            )
        except InputValidationError as exc:
            skipped[jid] = str(exc)
            continue
        if len(out[jid].stages) < 2:
            skipped[jid] = f"{len(apps)} approach(es) and nothing that conflicts: no plan needed"
            del out[jid]
    return out


def approaches_by_junction(app: Any) -> dict[str, list[Any]]:
    """The registry's approach rows (named tuples, no geometry) grouped by junction, in order.

    One pass over the table: grouping it and iterating each group's rows cost a few ms per
    junction (half the planning time of a city of 364 junctions).
    """
    out: dict[str, list[Any]] = {}
    if len(app) == 0:
        return out
    cols = [c for c in app.columns if c != "geometry"]
    for r in app[cols].itertuples(index=False):
        out.setdefault(str(r.junction), []).append(r)
    return out


def _node(value: Any) -> Hashable:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value  # type: ignore[no-any-return]


def crossroads_graph(
    *, arm_m: float = 100.0, speed_kph: float = 50.0, lanes: int = 1
) -> nx.MultiDiGraph:
    """A two-way four-arm cross-roads: node 0 at the centre, arms 1 (N), 2 (E), 3 (S), 4 (W).

    For examples and tests; edges carry ``length``, ``speed_kph``, ``lanes`` (both
    directions), ``lanes_dir`` and ``segment``.
    """
    g = nx.MultiDiGraph(crs="EPSG:2154")
    g.add_node(0, x=0.0, y=0.0)
    for i, (dx, dy) in enumerate(((0, 1), (1, 0), (0, -1), (-1, 0)), start=1):
        g.add_node(i, x=dx * arm_m, y=dy * arm_m)
        for u, v in ((i, 0), (0, i)):
            g.add_edge(
                u,
                v,
                length=arm_m,
                speed_kph=speed_kph,
                lanes=2 * lanes,
                lanes_dir=lanes,
                segment=f"segment:{i}",
                name=f"arm {i}",
            )
    return g
