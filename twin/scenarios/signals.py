"""Fixed-time signal plans, and Webster's method to compute them.

A :class:`SignalPlan` is plain data (frozen, picklable, ``to_dict``/``from_dict`` for JSON) so that
a safety gate can check it before it is sent to a controller. A plan is a sequence of
:class:`Phase` s; each phase gives right of way to a set of *approaches* (the drive edges entering a
junction from outside, as graph edge keys ``(u, v, key)``) for ``green_s`` seconds, and is followed
by ``amber_s`` of amber and ``all_red_s`` of all-red (the intergreen). So::

    cycle_s == sum(phase.green_s) + len(phases) * (amber_s + all_red_s)

Domain figures (DESIGN.md section 4; Webster, *Traffic signal settings*, Road Research Technical
Paper 39, HMSO 1958): saturation flow ~1,800 pcu/h/lane, cycle 40-120 s, amber 3 s, all-red
1-2 s at 50 km/h, minimum green 5-7 s. Webster's optimum cycle is
``C0 = (1.5 L + 5) / (1 - Y)`` with ``L`` the total lost time per cycle and ``Y`` the sum over
phases of the critical flow ratios ``y_i = q_i / s_i``; effective greens share ``C0 - L`` in
proportion to ``y_i``: ``g_i = (y_i / Y) (C0 - L)``.

>>> plan = SignalPlan("j1", 60.0, 0.0, (Phase(((1, 0, 0),), 25.0), Phase(((2, 0, 0),), 25.0)))
>>> plan.green_windows()[(2, 0, 0)]
((30.0, 55.0),)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import networkx as nx

from twin._errors import InputValidationError

__all__ = [
    "ALL_RED_GUIDE_S",
    "ALL_RED_MAX_S",
    "CYCLE_MAX_S",
    "CYCLE_MIN_S",
    "SATURATION_FLOW_PCU_H_LANE",
    "EdgeKey",
    "Phase",
    "SignalPlan",
    "approach_bearings",
    "group_by_axis",
    "webster_plan",
]

#: Saturation flow of one through lane (pcu/h/lane).
SATURATION_FLOW_PCU_H_LANE = 1800.0
#: Bounds of a fixed-time cycle (s).
CYCLE_MIN_S = 40.0
CYCLE_MAX_S = 120.0
#: All-red (red clearance) a plan should not exceed (s): MUTCD 2009 4D.26 para 09. The safety
#: validator allows more only where the junction's geometry needs it
#: (:func:`twin.signals.safety.check_plan`, rule ``all_red``).
ALL_RED_GUIDE_S = 6.0
#: Hard ceiling of any plan's all-red (s), whatever the junction: a turning vehicle at 7 m/s
#: (25 km/h) clears 78 m plus its 6 m length in 12 s, past the widest clustered junction of the
#: data (Montpellier's junction:286, 65 m across, 72 m from stop line to conflict point). A
#: junction that needs more is two junctions and wants stop lines inside it.
ALL_RED_MAX_S = 12.0

EdgeKey = tuple[Hashable, Hashable, int]

_EPS = 1e-6


def _edge_key(edge: Sequence[Any], *, field: str) -> EdgeKey:
    if isinstance(edge, str | bytes) or len(edge) not in (2, 3):
        msg = f"{field}: {edge!r} is not an edge key (u, v) or (u, v, key)"
        raise InputValidationError(msg)
    u, v = edge[0], edge[1]
    k = int(edge[2]) if len(edge) == 3 else 0
    return (u, v, k)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One stage of a fixed-time plan.

    Parameters
    ----------
    approaches : tuple of edge keys
        Approaches ``(u, v, key)`` that have right of way during this phase.
    green_s : float
        Displayed green time (s).
    walks : tuple of (str, float)
        Pedestrian crossings (signal group ids, ``crossing:N.K``) that walk during this phase,
        each with its walk time from the phase's start (s); their clearance follows
        (:mod:`twin.signals.safety`).
    """

    approaches: tuple[EdgeKey, ...]
    green_s: float
    walks: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        keys = tuple(_edge_key(a, field="Phase.approaches") for a in self.approaches)
        object.__setattr__(self, "approaches", keys)
        green = float(self.green_s)
        if not math.isfinite(green) or green <= 0:
            msg = f"Phase.green_s: {self.green_s!r} is not a positive number of seconds"
            raise InputValidationError(msg)
        object.__setattr__(self, "green_s", green)
        walks = []
        for item in dict(self.walks).items():
            c, w = str(item[0]), float(item[1])
            if not math.isfinite(w) or w <= 0:
                msg = f"Phase.walks[{c!r}]: {item[1]!r} is not a positive number of seconds"
                raise InputValidationError(msg)
            walks.append((c, w))
        object.__setattr__(self, "walks", tuple(walks))
        if not keys and not walks:
            msg = "Phase.approaches: a phase must give green to an approach or a crossing"
            raise InputValidationError(msg)


@dataclasses.dataclass(frozen=True)
class SignalPlan:
    """A fixed-time plan of one signalised junction.

    Parameters
    ----------
    junction : str
        Junction id (``junction:42`` in the registry, or a SUMO traffic-light id).
    cycle_s : float
        Cycle length (s), 40-120 s.
    offset_s : float
        Start of the first phase's green relative to the common time origin (s), in
        ``[0, cycle_s)``.
    phases : tuple of Phase
        Phases in order.
    amber_s : float
        Amber after each phase (s), 3-6 s.
    all_red_s : float
        All-red after each amber (s), 0 to :data:`ALL_RED_MAX_S` (12 s). Usually 1-2 s at
        50 km/h; imported SUMO programs have 0. MUTCD 2009 4D.26: a red clearance should not
        exceed 6 s (:data:`ALL_RED_GUIDE_S`) except to clear an exceptionally wide
        intersection; the safety validator allows more only as far as the junction's geometry
        needs it.
    min_green_s : float
        Minimum green that every phase must respect (s), 5-7 s.
    plan_id : str
        Id of the plan (default ``<junction>@<cycle>s/<offset>s``), carried to the live layer.
    valid_from, valid_until : datetime.datetime, optional
        Validity (tz-aware; converted to UTC); ``None`` is open-ended.

    Safety beyond these bounds (conflicting groups, intergreens, pedestrian clearance) needs the
    junction's geometry: :func:`twin.signals.safety.validate`.
    """

    junction: str
    cycle_s: float
    offset_s: float
    phases: tuple[Phase, ...]
    amber_s: float = 3.0
    all_red_s: float = 2.0
    min_green_s: float = 5.0
    plan_id: str = ""
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.junction, str) or not self.junction:
            msg = f"SignalPlan.junction: {self.junction!r} is not a non-empty string"
            raise InputValidationError(msg)
        for name in ("valid_from", "valid_until"):
            t = getattr(self, name)
            if t is None:
                continue
            if not isinstance(t, dt.datetime) or t.tzinfo is None:
                msg = f"SignalPlan({self.junction}).{name}: {t!r} is not a tz-aware datetime"
                raise InputValidationError(msg)
            object.__setattr__(self, name, t.astimezone(dt.UTC))
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            msg = f"SignalPlan({self.junction}).valid_until: not after valid_from"
            raise InputValidationError(msg)
        object.__setattr__(self, "phases", tuple(self.phases))
        j = self.junction
        for name, lo, hi in (
            ("cycle_s", CYCLE_MIN_S, CYCLE_MAX_S),
            ("amber_s", 3.0, 6.0),
            ("all_red_s", 0.0, ALL_RED_MAX_S),
            ("min_green_s", 5.0, 7.0),
        ):
            value = float(getattr(self, name))
            if not math.isfinite(value) or not lo - _EPS <= value <= hi + _EPS:
                msg = f"SignalPlan({j}).{name}: {getattr(self, name)!r} is outside [{lo}, {hi}] s"
                raise InputValidationError(msg)
            object.__setattr__(self, name, value)
        offset = float(self.offset_s)
        if not math.isfinite(offset) or not 0 <= offset < self.cycle_s:
            msg = f"SignalPlan({j}).offset_s: {self.offset_s!r} is outside [0, cycle_s)"
            raise InputValidationError(msg)
        object.__setattr__(self, "offset_s", offset)
        if not self.phases:
            msg = f"SignalPlan({j}).phases: a plan needs at least one phase"
            raise InputValidationError(msg)
        for i, phase in enumerate(self.phases):
            if not isinstance(phase, Phase):
                msg = f"SignalPlan({j}).phases[{i}]: {phase!r} is not a Phase"
                raise InputValidationError(msg)
            if phase.green_s < self.min_green_s - _EPS:
                msg = (
                    f"SignalPlan({j}).phases[{i}].green_s: {phase.green_s:g} s is below the "
                    f"minimum green {self.min_green_s:g} s"
                )
                raise InputValidationError(msg)
        total = sum(p.green_s for p in self.phases) + len(self.phases) * self.intergreen_s
        if abs(total - self.cycle_s) > 1e-3:
            msg = (
                f"SignalPlan({j}).cycle_s: {self.cycle_s:g} s differs from the sum of greens and "
                f"intergreens {total:g} s"
            )
            raise InputValidationError(msg)
        if not self.plan_id:
            pid = f"{self.junction}@{self.cycle_s:g}s/{self.offset_s:g}s"
            object.__setattr__(self, "plan_id", pid)

    @property
    def intergreen_s(self) -> float:
        """Amber plus all-red after each phase (s)."""
        return self.amber_s + self.all_red_s

    @property
    def approaches(self) -> tuple[EdgeKey, ...]:
        """Every approach served by the plan, in first-served order."""
        seen: dict[EdgeKey, None] = {}
        for phase in self.phases:
            for a in phase.approaches:
                seen.setdefault(a, None)
        return tuple(seen)

    def phase_starts(self) -> tuple[float, ...]:
        """Start of each phase's green within the cycle, before the offset (s)."""
        starts, t = [], 0.0
        for phase in self.phases:
            starts.append(t)
            t += phase.green_s + self.intergreen_s
        return tuple(starts)

    def green_windows(self) -> dict[EdgeKey, tuple[tuple[float, float], ...]]:
        """Green windows ``(start, end)`` of each approach within the cycle, offset excluded."""
        out: dict[EdgeKey, list[tuple[float, float]]] = {}
        for start, phase in zip(self.phase_starts(), self.phases, strict=True):
            for a in phase.approaches:
                out.setdefault(a, []).append((start, start + phase.green_s))
        return {a: tuple(w) for a, w in out.items()}

    def green_ratio(self, approach: EdgeKey) -> float:
        """Share of the cycle during which ``approach`` has green (0 if it is never served)."""
        windows = self.green_windows().get(approach, ())
        return sum(b - a for a, b in windows) / self.cycle_s

    def is_green(self, approach: EdgeKey, t_s: float) -> bool:
        """Whether ``approach`` has green at time ``t_s`` (s since the common origin)."""
        tc = (t_s - self.offset_s) % self.cycle_s
        return any(a <= tc < b for a, b in self.green_windows().get(approach, ()))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (edge keys as lists)."""
        return {
            "id": self.plan_id,
            "junction": self.junction,
            "valid_from": None if self.valid_from is None else self.valid_from.isoformat(),
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
            "cycle_s": self.cycle_s,
            "offset_s": self.offset_s,
            "amber_s": self.amber_s,
            "all_red_s": self.all_red_s,
            "min_green_s": self.min_green_s,
            "phases": [
                {
                    "approaches": [list(a) for a in p.approaches],
                    "green_s": p.green_s,
                    "walks": dict(p.walks),
                }
                for p in self.phases
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalPlan:
        """Inverse of :meth:`to_dict`; validates as the constructor does."""
        try:
            phases = tuple(
                Phase(
                    tuple(tuple(a) for a in p["approaches"]),
                    p["green_s"],
                    tuple(dict(p.get("walks") or {}).items()),
                )
                for p in data["phases"]
            )

            def when(name: str) -> dt.datetime | None:
                raw = data.get(name)
                if raw is None:
                    return None
                try:
                    return dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
                except ValueError:
                    msg = f"SignalPlan.from_dict: {name} {raw!r} is not an ISO 8601 time"
                    raise InputValidationError(msg) from None

            return cls(
                junction=data["junction"],
                cycle_s=data["cycle_s"],
                offset_s=data.get("offset_s", 0.0),
                phases=phases,
                amber_s=data.get("amber_s", 3.0),
                all_red_s=data.get("all_red_s", 2.0),
                min_green_s=data.get("min_green_s", 5.0),
                plan_id=str(data.get("id") or ""),
                valid_from=when("valid_from"),
                valid_until=when("valid_until"),
            )
        except KeyError as exc:
            msg = f"SignalPlan.from_dict: missing field {exc.args[0]!r}"
            raise InputValidationError(msg) from None

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict())


def approach_bearings(
    graph: nx.MultiDiGraph, approaches: Sequence[EdgeKey]
) -> dict[EdgeKey, float]:
    """Bearing of travel of each approach edge, in degrees clockwise from grid north.

    Computed from the edge's end nodes in the graph's projected coordinates (``x``, ``y``).
    """
    out = {}
    for a in approaches:
        u, v, _ = _edge_key(a, field="approaches")
        if u not in graph.nodes or v not in graph.nodes:
            msg = f"approaches: edge {a!r} is not in the graph"
            raise InputValidationError(msg)
        dx = graph.nodes[v]["x"] - graph.nodes[u]["x"]
        dy = graph.nodes[v]["y"] - graph.nodes[u]["y"]
        out[a] = math.degrees(math.atan2(dx, dy)) % 360.0
    return out


def group_by_axis(
    bearings: Mapping[EdgeKey, float], *, tolerance_deg: float = 30.0
) -> list[tuple[EdgeKey, ...]]:
    """Group approaches that travel along the same axis (opposite approaches share a phase).

    The axis of a bearing is the bearing modulo 180 degrees. Approaches are sorted by axis and
    a new group starts at every gap wider than ``tolerance_deg`` (circularly). A cross-roads
    gives two groups; a five-arm junction may give three.

    >>> group_by_axis({(1, 0, 0): 0.0, (2, 0, 0): 180.0, (3, 0, 0): 90.0, (4, 0, 0): 275.0})
    [((1, 0, 0), (2, 0, 0)), ((3, 0, 0), (4, 0, 0))]
    """
    if not bearings:
        return []
    items = sorted(bearings.items(), key=lambda kv: kv[1] % 180.0)
    axes = [b % 180.0 for _, b in items]
    n = len(items)
    gaps = [((axes[(i + 1) % n] - axes[i]) % 180.0) for i in range(n)]
    if n == 1 or max(gaps) <= tolerance_deg:
        return [tuple(k for k, _ in items)]
    # start right after the widest gap so no group wraps around
    start = (max(range(n), key=lambda i: gaps[i]) + 1) % n
    order = [items[(start + i) % n] for i in range(n)]
    groups: list[list[EdgeKey]] = [[order[0][0]]]
    for i in range(1, n):
        prev, cur = order[i - 1][1] % 180.0, order[i][1] % 180.0
        if (cur - prev) % 180.0 > tolerance_deg:
            groups.append([])
        groups[-1].append(order[i][0])
    return sorted((tuple(g) for g in groups), key=lambda g: min(bearings[a] % 180 for a in g))


def webster_plan(
    junction: str,
    approach_flows_pcu_h: Mapping[EdgeKey, float],
    *,
    lanes: Mapping[EdgeKey, int] | int = 1,
    graph: nx.MultiDiGraph | None = None,
    groups: Sequence[Sequence[EdgeKey]] | None = None,
    saturation_flow: float = SATURATION_FLOW_PCU_H_LANE,
    lost_time_per_phase: float = 5.0,
    amber_s: float = 3.0,
    all_red_s: float = 2.0,
    min_green_s: float = 5.0,
    offset_s: float = 0.0,
) -> SignalPlan:
    """Fixed-time plan by Webster's method.

    Parameters
    ----------
    junction : str
        Junction id.
    approach_flows_pcu_h : mapping edge key -> float
        Arrival flow of each approach (pcu/h).
    lanes : mapping edge key -> int, or int
        Lanes of each approach (saturation flow is ``lanes * saturation_flow``).
    graph : networkx.MultiDiGraph, optional
        Graph giving the approach geometry; phases group opposite approaches by bearing.
    groups : sequence of sequences of edge keys, optional
        Phases given explicitly (overrides ``graph``). With neither, the approaches are sorted by
        key and split in two phases.
    saturation_flow : float
        Saturation flow per lane (pcu/h/lane).
    lost_time_per_phase : float
        Lost time per phase (s); ``L = n_phases * lost_time_per_phase``.
    amber_s, all_red_s, min_green_s, offset_s : float
        As in :class:`SignalPlan`.

    Returns
    -------
    SignalPlan
        Cycle ``C0 = (1.5 L + 5) / (1 - Y)`` clamped to 40-120 s (120 s when ``Y >= 1``);
        effective greens ``g_i = (y_i / Y)(C - L)``; displayed green
        ``g_i + lost_time_per_phase - amber_s - all_red_s``, raised to ``min_green_s`` if needed
        (the cycle then grows by the same amount, still capped by validation).

    Examples
    --------
    Two phases, flows 600 and 450 pcu/h on one-lane approaches: y = 1/3 and 1/4, Y = 7/12,
    L = 10 s, C0 = 20 / (5/12) = 48 s.

    >>> a, b = (1, 0, 0), (2, 0, 0)
    >>> p = webster_plan("j", {a: 600.0, b: 450.0}, groups=[[a], [b]])
    >>> p.cycle_s, [round(ph.green_s, 3) for ph in p.phases]
    (48.0, [21.714, 16.286])
    """
    flows: dict[EdgeKey, float] = {}
    for a, q in approach_flows_pcu_h.items():
        key = _edge_key(a, field="approach_flows_pcu_h")
        qf = float(q)
        if not math.isfinite(qf) or qf < 0:
            msg = f"approach_flows_pcu_h[{a!r}]: {q!r} is not a non-negative flow (pcu/h)"
            raise InputValidationError(msg)
        flows[key] = qf
    if not flows:
        msg = "approach_flows_pcu_h: no approach given"
        raise InputValidationError(msg)
    if saturation_flow <= 0:
        msg = f"saturation_flow: {saturation_flow!r} must be positive (pcu/h/lane)"
        raise InputValidationError(msg)
    if groups is not None:
        phase_sets = [tuple(_edge_key(a, field="groups") for a in g) for g in groups]
        missing = [a for g in phase_sets for a in g if a not in flows]
        if missing:
            msg = f"groups: approaches {missing!r} have no flow in approach_flows_pcu_h"
            raise InputValidationError(msg)
    elif graph is not None:
        phase_sets = group_by_axis(approach_bearings(graph, list(flows)))
    else:
        keys = sorted(flows, key=repr)
        half = max(1, len(keys) // 2)
        phase_sets = [tuple(keys[:half]), tuple(keys[half:])] if len(keys) > 1 else [tuple(keys)]

    def n_lanes(a: EdgeKey) -> int:
        n = lanes if isinstance(lanes, int) else lanes.get(a, 1)
        if int(n) < 1:
            msg = f"lanes[{a!r}]: {n!r} must be at least 1"
            raise InputValidationError(msg)
        return int(n)

    ys = [max(flows[a] / (n_lanes(a) * saturation_flow) for a in g) for g in phase_sets]
    n = len(phase_sets)
    total_lost = n * lost_time_per_phase
    y_sum = sum(ys)
    if y_sum >= 1.0:
        cycle = CYCLE_MAX_S
    else:
        cycle = min(max((1.5 * total_lost + 5.0) / (1.0 - y_sum), CYCLE_MIN_S), CYCLE_MAX_S)
    effective = cycle - total_lost
    shares = [y / y_sum for y in ys] if y_sum > 0 else [1.0 / n] * n
    intergreen = amber_s + all_red_s
    greens = [max(s * effective + lost_time_per_phase - intergreen, min_green_s) for s in shares]
    cycle = sum(greens) + n * intergreen
    phases = tuple(Phase(g, gs) for g, gs in zip(phase_sets, greens, strict=True))
    return SignalPlan(
        junction,
        cycle,
        offset_s % cycle,
        phases,
        amber_s=amber_s,
        all_red_s=all_red_s,
        min_green_s=min_green_s,
    )
