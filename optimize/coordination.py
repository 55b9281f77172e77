"""A city's signal plans optimised and coordinated: LP splits, common cycles, MAXBAND offsets.

:func:`coordinated_plans` is the whole chain from the Webster plans of
:func:`twin.scenarios.network.signal_plans` to the plans that go to the street (and to SUMO):

1. the arterial corridors of the data (:func:`optimize.maxband.corridors`, five or more
   consecutive signals along one street), longest first; a corridor sharing a junction with a
   longer one already coordinated is left out (its junctions cannot follow two offsets);
2. each corridor is cut where its signals are too loosely coupled to gain from a common
   cycle: the coupling index of a link is its two-way volume over its length,
   ``I = V / L`` in veh/h per foot (the Traffic Signal Timing Manual, FHWA-HOP-08-024, 2008,
   section 6.2: above 0.5 coordination pays, below 0.3 it rarely does; ``min_coupling``), the
   volume being the planning flows of the two approaches of the street that the link feeds.
   The runs of two or more signals joined by coupled links are coordinated; the others stay
   isolated, at their own Webster cycle;
3. each coupled run is timed by the delay it gives (:func:`time_run`): every common cycle
   ``C`` from 40 to 120 s is tried; at each, a junction runs at ``C`` or, where its minimum
   greens fit in ``C / 2`` (at least the 40 s minimum), at ``C / 2`` (double cycling: short
   waits on its side streets, still repeating with the common cycle) if that gives it less
   delay and one of its greens passes a whole cycle of the street's platoon; junctions are
   then left out of the run, one at a time, while that lowers the run's total delay (a
   junction left out keeps its Webster plan). The delay is the HCM's form of Webster's
   (uniform and incremental delay, :func:`run_delay`), the street's platoons from a
   coordinated neighbour arriving in a band (the HCM's progression factor of arrival type 4);
   the timing of least total delay is kept. The earlier rule, the run's longest Webster
   cycle for every junction (``common_cycle="longest"``), let one junction impose its cycle
   on the others: on Avenue de Toulouse with the calibrated demand, a 95 s cycle that a
   pedestrian stage gives junction:119 made four junctions of 57-60 s run at 95 s, and the
   band MAXBAND found at 95 s (14.5 s outbound, none inbound) did not pay it back: 13 s more
   travel time than Webster's isolated plans, in the DES as in SUMO. Timed by delay, the run
   takes 90 s, junction:110 and junction:130 at 45 s, with a band of 13.8 s each way, and the
   corridor is 8 s (half flows) to 10 s (full flows) faster than Webster's plans, in both
   (benchmarks/signals.py). The green splits of each junction of a run are the LP's
   (:func:`optimize.signals.optimise_splits`, validated; by default the splits of greatest
   reserve capacity); every other junction keeps its Webster plan (``split_all`` gives them
   the LP's splits too);
4. MAXBAND (Little, Kelson and Gartner 1981) on each run, its reds and green starts those of
   the re-timed plans (a double-cycled signal's red recurs every half cycle, and a band may
   pass in either of its two greens: counting one green per common cycle made 10 of
   Montpellier's 19 corridors infeasible once their counted flows coupled whole corridors at
   120 s); its offsets become the plans' ``offset_s``. An infeasible run keeps offsets 0
   and is reported with its binding constraints.

Every plan returned passes :func:`twin.signals.safety.validate` on its junction model (the
offset does not change what a junction shows within its cycle).

In the city-wide traffic DES of Montpellier's morning peak (8-9 h, one queue per lane), with
each run at its longest cycle (the earlier rule), the planning demand grid-locks (10,600 to
17,200 trips unfinished) and where it does moves with the seed: the fixed-time Webster plans
give a mean stop-line delay of 205 s/veh, the coordination 193 (-6%); with seed 2 instead of
2018, 231 and 172 (-25%; 11,300 trips unfinished against 17,200). With seed 2018 the 125
re-timed junctions gain (229 to 189 s/veh) and the 195 unchanged ones do not (191 to 196);
with seed 2 the unchanged ones gain almost as much as the re-timed (-52 and -69 s/veh): part
of the difference is where the grid-lock settles, not the re-timed junctions. Over the two
seeds that coordination is 16% below Webster (183 against 218). Whole corridors at their
longest cycle with the LP's splits everywhere: 153 with seed 2018 (10,600 trips unfinished).
benchmarks/signals.py prints the figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from optimize.maxband import (
    Arterial,
    MaxbandInfeasibleError,
    arterial_stage,
    corridors,
    maxband,
)
from optimize.signals import optimise_splits
from twin._errors import InputValidationError, UnknownAssetError
from twin.scenarios.signals import CYCLE_MAX_S, CYCLE_MIN_S, SignalPlan
from twin.signals.junction import AMBER_S, JunctionModel, nearest_ids
from twin.signals.plans import all_red_for, split_greens, stage_minimums, stage_ratios
from twin.signals.safety import validate

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "COMMON_CYCLES",
    "Coordination",
    "RunMember",
    "RunTiming",
    "coordinated_plans",
    "coupling_index",
    "junction_flows",
    "run_delay",
    "time_run",
]

FEET_PER_M = 1.0 / 0.3048

COMMON_CYCLES = ("delay", "longest")
"""How a coordinated run's common cycle is chosen (:func:`coordinated_plans`)."""

PLATOON_RATIO = 1.333
"""Platoon ratio ``R_p`` of arrival type 4, favourable progression (HCM 2000, exhibit 16-11)."""

PROGRESSION_F_PA = 1.15
"""Supplemental adjustment ``f_PA`` of arrival type 4 (HCM 2000, exhibit 16-12)."""


@dataclasses.dataclass
class Coordination:
    """Plans of a city, optimised and coordinated, and what the coordination found.

    Attributes
    ----------
    plans : dict of str to SignalPlan
        One validated plan per planned junction, with its offset.
    bands : dict of str to xarray.Dataset
        MAXBAND's solution per coordinated corridor (:func:`optimize.maxband.maxband`).
    arterials : dict of str to Arterial
        The corridors as solved (re-timed reds and green starts).
    infeasible : dict of str to tuple of str
        Corridors without a band, with MAXBAND's binding constraint groups.
    left_out : dict of str to str
        Corridors not coordinated, and why.
    solutions : dict of str to xarray.Dataset
        The split LP's solution per junction it re-split (those of the coordinated runs, or
        every junction with ``split_all``).
    coupling : dict of str to tuple of float
        Per corridor of the data, the coupling index of each link (veh/h per foot).
    double_cycled : set of str
        Junctions of a coordinated run that run at half its common cycle.
    isolated : set of str
        Junctions of a corridor that its weak coupling left at their own Webster cycle.
    declined : set of str
        Junctions of a coupled run left at their own Webster plan because coordinating them
        would cost more delay than it saves (:func:`time_run`).
    """

    plans: dict[str, SignalPlan]
    bands: dict[str, xr.Dataset] = dataclasses.field(default_factory=dict)
    arterials: dict[str, Arterial] = dataclasses.field(default_factory=dict)
    infeasible: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)
    solutions: dict[str, xr.Dataset] = dataclasses.field(default_factory=dict)
    coupling: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    double_cycled: set[str] = dataclasses.field(default_factory=set)
    isolated: set[str] = dataclasses.field(default_factory=set)
    declined: set[str] = dataclasses.field(default_factory=set)


def junction_flows(plans: Any, junction: str) -> tuple[dict[str, float], dict[str, int]]:
    """Flows (pcu/h) and lanes of each vehicle group of a planned junction.

    ``plans`` is a :class:`~twin.scenarios.network.PlanSet` (its ``flows`` and ``models``).
    """
    model = plans.models[junction]
    fr = plans.flows[plans.flows["junction"] == junction]
    flows: dict[str, float] = {}
    lanes: dict[str, int] = {}
    for r in fr.itertuples(index=False):
        g = model.group_of_edge((r.u, r.v, r.key))
        flows[g] = float(r.flow_pcu_h)
        lanes[g] = int(r.lanes)
    return flows, lanes


def _street(art: Arterial) -> str:
    return art.name.rsplit(" (", 1)[0]


def _street_inflows(tw: Twin, plans: Any, art: Arterial) -> list[tuple[float, float]]:
    """Per signal of ``art``, its street approaches' flows from the previous and the next signal.

    Planning flows (pcu/h); 0 at the ends.
    """
    drive = tw.drive
    jx = tw.registry["junction"].geometry
    street = _street(art)
    app = tw.registry["approach"]
    on_street = app[app["name"] == street]
    flows = plans.flows
    q = {
        (str(r.junction), int(r.u), int(r.v), int(r.key)): float(r.flow_pcu_h)
        for r in flows.itertuples(index=False)
    }

    def inflow(j: str, towards: str) -> float:
        cx, cy = jx[towards].x, jx[towards].y
        tot = 0.0
        for r in on_street[on_street["junction"] == j].itertuples(index=False):
            u, v = drive.nodes[int(r.u)], drive.nodes[int(r.v)]
            if np.hypot(u["x"] - cx, u["y"] - cy) < np.hypot(v["x"] - cx, v["y"] - cy):
                tot += q.get((j, int(r.u), int(r.v), int(r.key)), 0.0)
        return tot

    js = art.junctions
    return [
        (
            inflow(j, js[i - 1]) if i > 0 else 0.0,
            inflow(j, js[i + 1]) if i < len(js) - 1 else 0.0,
        )
        for i, j in enumerate(js)
    ]


def coupling_index(tw: Twin, plans: Any, art: Arterial) -> tuple[float, ...]:
    """Coupling index of each link of an arterial: two-way volume over length (veh/h per ft).

    The volume of the link from signal ``i`` to ``i + 1`` is the planning flow
    (``plans.flows``, pcu/h) of the street's approaches of ``i + 1`` that come from ``i`` plus
    that of the approaches of ``i`` that come from ``i + 1`` (Traffic Signal Timing Manual,
    FHWA-HOP-08-024, 2008, section 6.2).
    """
    return _coupling(art, _street_inflows(tw, plans, art))


def _coupling(art: Arterial, inflows: Sequence[tuple[float, float]]) -> tuple[float, ...]:
    return tuple(
        (inflows[i + 1][0] + inflows[i][1]) / (d * FEET_PER_M)
        for i, d in enumerate(art.distances_m)
    )


@dataclasses.dataclass(frozen=True)
class RunMember:
    """One signal of a run to coordinate, as :func:`time_run` weighs it.

    Attributes
    ----------
    model : JunctionModel
    flows_pcu_h, lanes : mapping of group id
        Planning flow and lanes of each vehicle group.
    own_cycle_s : float
        The cycle of the junction's own (Webster) plan, kept if it is left out of the run.
    stage : int
        The stage that serves the street of the run.
    from_prev_pcu_h, from_next_pcu_h : float
        Flow of the street's approaches that arrives from the previous and from the next
        signal of the run (the platoons a band can carry).
    """

    model: JunctionModel
    flows_pcu_h: Mapping[str, float]
    lanes: Mapping[str, int]
    own_cycle_s: float
    stage: int
    from_prev_pcu_h: float = 0.0
    from_next_pcu_h: float = 0.0


@dataclasses.dataclass(frozen=True)
class RunTiming:
    """The timing :func:`time_run` chose for a run.

    Attributes
    ----------
    cycle_s : float
        The common cycle.
    period_s : tuple of float or None
        Per member: its cycle (``cycle_s``, or ``cycle_s / 2`` where double-cycled), or
        ``None`` where it is left out (its own plan kept).
    delay_veh_h : float
        The members' Webster delay under this timing (vehicle-hours per hour).
    own_delay_veh_h : float
        The same with every member at its own cycle, uncoordinated.
    """

    cycle_s: float
    period_s: tuple[float | None, ...]
    delay_veh_h: float
    own_delay_veh_h: float


class _Weighed:
    """A member's fixed quantities for :func:`run_delay` (stage minimums, ratios, flows)."""

    def __init__(self, m: RunMember) -> None:
        model = m.model
        stages = model.stages
        red = all_red_for(model, stages)
        self.lost = len(stages) * (AMBER_S + red)
        self.mins = stage_minimums(model, stages, all_red_s=red)
        self.ys = stage_ratios(model, m.flows_pcu_h, stages=stages, lanes=m.lanes)
        y_sum = sum(self.ys)
        n = len(stages)
        self.shares = [y / y_sum for y in self.ys] if y_sum > 0 else [1.0 / n] * n
        self.q = [
            sum(float(m.flows_pcu_h.get(g, 0.0)) for g in s if model.group(g).kind == "vehicle")
            for s in stages
        ]
        self.min_cycle = sum(self.mins) + self.lost
        self.member = m
        self._greens: dict[float, list[float]] = {}

    def greens(self, cycle: float) -> list[float]:
        """Webster's shares of ``cycle``'s green time, each stage at least its minimum."""
        if cycle not in self._greens:
            self._greens[cycle] = split_greens(self.shares, self.mins, cycle - self.lost)
        return self._greens[cycle]


def run_delay(member: RunMember, cycle_s: float, *, progressed_pcu_h: float = 0.0) -> float:
    """Control delay (veh-h/h) of a junction at ``cycle_s``, its street's platoons progressed.

    The greens are Webster's shares of ``cycle_s`` (each stage at least its minimum); each
    stage's delay per vehicle is the HCM's (HCM 2000, eq. 16-9 to 16-12, from Webster's):
    ``d = d1 PF + d2``, the uniform delay ``d1 = 0.5 C (1 - g/C)^2 / (1 - min(1, x) g/C)`` and
    the incremental delay ``d2 = 900 T ((x - 1) + sqrt((x - 1)^2 + 4 x / (c T)))`` over
    ``T = 0.25`` h (``k = 0.5``, ``I = 1``: pretimed), which stays finite above saturation
    (``x`` the stage's degree of saturation, ``c`` its capacity). ``progressed_pcu_h`` of the
    street stage's flow arrives in a band: the progression factor
    ``PF = (1 - P) f_PA / (1 - g/C)``, ``P = R_p g/C``, of arrival type 4 (favourable
    progression: ``R_p = 1.333``, ``f_PA = 1.15``), at most 1; the other arrivals are random
    (``PF = 1``). Infinite where the stage minimums and intergreens do not fit in ``cycle_s``.
    """
    return _delay(_Weighed(member), cycle_s, progressed_pcu_h)


def _delay(w: _Weighed, cycle: float, progressed: float) -> float:
    if cycle < w.min_cycle - 1e-6:
        return float("inf")
    greens = w.greens(cycle)
    period_h = 0.25
    tot = 0.0
    for k, (g, y, q) in enumerate(zip(greens, w.ys, w.q, strict=True)):
        if q <= 0:
            continue
        lam = g / cycle
        x = y / lam if lam > 0 else 10.0
        d1 = 0.5 * cycle * (1 - lam) ** 2 / (1 - min(1.0, x) * lam)
        cap = q / x if x > 0 else float("inf")
        d2 = 900 * period_h * ((x - 1) + np.sqrt((x - 1) ** 2 + 4 * x / (cap * period_h)))
        qp = min(progressed, q) if k == w.member.stage else 0.0
        pf = min(max(1 - PLATOON_RATIO * lam, 0.0) * PROGRESSION_F_PA / max(1 - lam, 1e-9), 1.0)
        tot += ((q - qp) + qp * pf) * d1 + q * float(d2)
    return tot / 3600.0


def time_run(members: Sequence[RunMember], *, double_cycling: bool = True) -> RunTiming:
    """The common cycle of a run, which members run at half of it, and which are left out.

    Every cycle from 40 to 120 s (and each member's own) is tried; at each, a member runs at
    the cycle or, where ``double_cycling`` and its minimums fit in half of it (at least
    40 s), at the half if that gives it less delay and one green of the half cycle passes the
    street's traffic of a whole cycle (its coordinated neighbours send it once a cycle, as a
    platoon: ``y C <= g``, ``y`` the street stage's critical flow ratio). Members are then
    left out one at a time (each keeps its own plan) while that lowers the run's total:
    coordination costs a member the delay of a cycle that is not its own, and gains the
    progression of the street's platoons from its coordinated neighbours (:func:`run_delay`).
    A member whose minimums do not fit in the cycle is left out; so is one whose neighbours
    both are (a run needs two). The timing of least total delay is returned; with every
    member left out, the
    run is not coordinated.
    """
    ws = [_Weighed(m) for m in members]
    n = len(ws)
    own = [_delay(w, w.member.own_cycle_s, 0.0) for w in ws]
    own_total = float(sum(own))
    best = RunTiming(0.0, (None,) * n, own_total, own_total)
    cands = sorted(
        {float(c) for c in range(int(CYCLE_MIN_S), int(CYCLE_MAX_S) + 1)}
        | {w.member.own_cycle_s for w in ws if CYCLE_MIN_S <= w.member.own_cycle_s <= CYCLE_MAX_S}
    )
    for cyc in cands:
        periods: list[tuple[float, ...]] = []
        for w in ws:
            opts: tuple[float, ...] = (cyc,) if cyc >= w.min_cycle - 1e-6 else ()
            half = cyc / 2
            if double_cycling and half >= max(CYCLE_MIN_S, w.min_cycle - 1e-6):
                # the neighbours at the whole cycle send the street's traffic once a cycle:
                # one green of the half cycle must pass a whole cycle of it
                st = w.member.stage
                if w.ys[st] * cyc <= w.greens(half)[st] + 1e-9:
                    opts = (*opts, half)
            periods.append(opts)
        if sum(bool(p) for p in periods) < 2:
            continue
        # per member and progressed sides (none, previous, next, both): its best period, delay
        table = []
        for w, opts in zip(ws, periods, strict=True):
            row = []
            for side in range(4):
                prog = (w.member.from_prev_pcu_h if side & 1 else 0.0) + (
                    w.member.from_next_pcu_h if side & 2 else 0.0
                )
                row.append(min(((_delay(w, p, prog), p) for p in opts), default=(np.inf, 0.0)))
            table.append(row)

        def total(
            inside: list[bool], table: list[list[tuple[float, float]]] = table
        ) -> tuple[float, list[float | None]]:
            tot = 0.0
            chosen: list[float | None] = []
            for i in range(n):
                prev = i > 0 and inside[i - 1]
                nxt = i < n - 1 and inside[i + 1]
                if inside[i] and (prev or nxt):
                    d, p = table[i][int(prev) + 2 * int(nxt)]
                    tot += d
                    chosen.append(p)
                else:
                    tot += own[i]
                    chosen.append(None)
            return tot, chosen

        inside = [bool(p) for p in periods]
        cost, chosen = total(inside)
        while True:
            trials = []
            for i in range(n):
                if inside[i]:
                    trial = [*inside[:i], False, *inside[i + 1 :]]
                    trials.append((total(trial)[0], i))
            if not trials:
                break
            c, i = min(trials)
            if c >= cost - 1e-9:
                break
            inside[i] = False
            cost, chosen = total(inside)
        if cost < best.delay_veh_h - 1e-9:
            best = RunTiming(cyc, tuple(chosen), cost, own_total)
    return best


def _sub_arterial(art: Arterial, run: Sequence[int]) -> Arterial:
    """The signals ``run`` (consecutive indices) of ``art`` as an arterial of their own."""
    js = tuple(art.junctions[i] for i in run)
    name = art.name if len(run) == len(art.junctions) else f"{_street(art)} ({js[0]}-{js[-1]})"
    return Arterial(
        name,
        js,
        tuple(art.distances_m[i] for i in run[:-1]),
        tuple(art.red_s[i] for i in run),
        art.cycle_s,
        tuple(art.green_start_s[i] for i in run),
        tuple(art.speed_limit_kph[i] for i in run[:-1]),
    )


def _coupled_runs(art: Arterial, index: tuple[float, ...], minimum: float) -> list[Arterial]:
    runs: list[list[int]] = [[0]]
    for i, c in enumerate(index):
        if c >= minimum:
            runs[-1].append(i + 1)
        else:
            runs.append([i + 1])
    return [_sub_arterial(art, run) for run in runs if len(run) >= 2]


def _timed_runs(
    tw: Twin,
    plans: Any,
    art: Arterial,
    inflows: Sequence[tuple[float, float]],
    *,
    double_cycling: bool,
) -> tuple[list[tuple[Arterial, float, tuple[float, ...]]], set[str]]:
    """The runs :func:`time_run` keeps of a coupled run, and the signals it leaves out.

    Each run with its common cycle and the period of each of its signals.
    """
    street = _street(art)
    members = []
    last = len(art.junctions) - 1
    for i, (j, (prev, nxt)) in enumerate(zip(art.junctions, inflows, strict=True)):
        prev, nxt = (prev if i > 0 else 0.0), (nxt if i < last else 0.0)
        flows, lanes = junction_flows(plans, j)
        members.append(
            RunMember(
                plans.models[j],
                flows,
                lanes,
                plans[j].cycle_s,
                arterial_stage(tw, plans[j], street),
                prev,
                nxt,
            )
        )
    timing = time_run(members, double_cycling=double_cycling)
    runs: list[list[int]] = [[]]
    for i, p in enumerate(timing.period_s):
        if p is None:
            runs.append([])
        else:
            runs[-1].append(i)
    out = [
        (
            _sub_arterial(art, run),
            timing.cycle_s,
            tuple(float(timing.period_s[i]) for i in run),  # type: ignore[arg-type]
        )
        for run in runs
        if len(run) >= 2
    ]
    kept = {j for a, _, _ in out for j in a.junctions}
    return out, set(art.junctions) - kept


def coordinated_plans(
    tw: Twin,
    plans: Any,
    *,
    corridor: str | None = None,
    max_corridors: int | None = None,
    objective: str = "reserve",
    maxband_options: Mapping[str, Any] | None = None,
    min_coupling: float = 0.5,
    double_cycling: bool = True,
    split_all: bool = False,
    common_cycle: str = "delay",
) -> Coordination:
    """Optimise and coordinate a city's signal plans (see the module's docstring).

    Parameters
    ----------
    tw : twin.model.Twin
    plans : twin.scenarios.network.PlanSet
        Webster plans of :func:`~twin.scenarios.network.signal_plans` (flows and models).
    corridor : str, optional
        Coordinate only this corridor (its name, or the start of it: the street's name).
    max_corridors : int, optional
        Coordinate at most this many corridors, longest first.
    objective : {"reserve", "delay"}
        Of the split LP. ``"reserve"`` (the default) balances the stages' degrees of
        saturation; ``"delay"`` minimises Webster's uniform delay for the planning flows,
        which in the traffic DES (whose routed flows differ from the planning ones) left
        Montpellier's morning peak with 11% more stop-line delay than the fixed-time Webster
        plans and Paris-Trocadéro's with 89% more (benchmarks/signals.py).
    maxband_options : mapping, optional
        Keyword options of :func:`~optimize.maxband.maxband`.
    min_coupling : float
        Coupling index (veh/h per foot) below which a link is not coordinated; 0 coordinates
        whole corridors.
    double_cycling : bool
        Run lightly loaded junctions of a coordinated run at half its common cycle.
    common_cycle : {"delay", "longest"}
        How each coupled run is timed. ``"delay"`` (the default): :func:`time_run`, the
        common cycle, double cycling and the members left out that give the run the least
        Webster delay, the platoons of coordinated neighbours progressed. ``"longest"``: the
        run's longest Webster cycle, a member double-cycled where its own cycle is at most
        half of it (the earlier rule; on Avenue de Toulouse with the calibrated demand,
        a pedestrian stage's 95 s cycle at one junction imposed on four junctions of 57-60 s
        made the corridor 13 s slower than Webster's isolated plans, in the DES as in SUMO).
    split_all : bool
        Give every junction the LP's splits; by default a junction outside the coordinated
        runs keeps its Webster plan (in the morning peak DES of Montpellier, the LP's splits
        at the junctions' own cycles gave 7% more stop-line delay than Webster's:
        265 against 247 s/veh).

    Returns
    -------
    Coordination

    Raises
    ------
    UnknownAssetError
        If ``corridor`` names no corridor of the city; the message lists the nearest names.
    InputValidationError
        If ``min_coupling`` is negative or not finite.
    """
    if common_cycle not in COMMON_CYCLES:
        msg = f"common_cycle: {common_cycle!r} is not one of {COMMON_CYCLES}"
        raise InputValidationError(msg)
    if not (np.isfinite(min_coupling) and min_coupling >= 0):
        msg = f"min_coupling: {min_coupling!r} must be a finite index, at least 0"
        raise InputValidationError(msg)
    arts = corridors(tw, plans)
    if corridor is not None:
        hits = [a for a in arts if a.name == corridor or a.name.startswith(corridor)]
        if not hits:
            names = [a.name for a in arts]
            near = ", ".join(nearest_ids(corridor, names)) or "none"
            msg = f"corridor: no corridor {corridor!r} in {tw.city.name} (nearest: {near})"
            raise UnknownAssetError(msg)
        arts = hits[:1]
    if max_corridors is not None:
        arts = arts[:max_corridors]
    cycle_of: dict[str, float] = {}
    corridor_of: dict[str, str] = {}
    out = Coordination(plans={})
    runs: list[Arterial] = []
    for art in arts:
        shared = [j for j in art.junctions if j in corridor_of]
        if shared:
            out.left_out[art.name] = (
                f"shares {shared[0]} with {corridor_of[shared[0]]}, coordinated first"
            )
            continue
        for j in art.junctions:
            corridor_of[j] = art.name
        inflows = _street_inflows(tw, plans, art)
        index = _coupling(art, inflows)
        out.coupling[art.name] = index
        mine = _coupled_runs(art, index, min_coupling)
        coordinated = {j for r in mine for j in r.junctions}
        out.isolated |= set(art.junctions) - coordinated
        timed: list[tuple[Arterial, float, tuple[float, ...]]] = []
        for r in mine:
            if common_cycle == "delay":
                i0 = art.junctions.index(r.junctions[0])
                mine_in = inflows[i0 : i0 + len(r.junctions)]
                kept, declined = _timed_runs(tw, plans, r, mine_in, double_cycling=double_cycling)
                timed += kept
                out.declined |= declined
                continue
            common = max(plans[j].cycle_s for j in r.junctions)
            half = common / 2
            timed.append(
                (
                    r,
                    common,
                    tuple(
                        half
                        if double_cycling and half >= CYCLE_MIN_S and plans[j].cycle_s <= half
                        else common
                        for j in r.junctions
                    ),
                )
            )
        for r, common, run_periods in timed:
            for j, period in zip(r.junctions, run_periods, strict=True):
                cycle_of[j] = period
                if period < common - 1e-9:
                    out.double_cycled.add(j)
            f = common / r.cycle_s  # reds scaled to the run's cycle; re-timed below
            runs.append(
                dataclasses.replace(
                    r,
                    cycle_s=common,
                    red_s=tuple(x * f for x in r.red_s),
                    green_start_s=tuple(x * f for x in r.green_start_s),
                    period_s=(common,) * len(r.junctions),
                )
            )
    for jid, plan in plans.items():
        if not split_all and jid not in cycle_of:
            out.plans[jid] = plan  # Webster's, validated by signal_plans
            continue
        flows, lanes = junction_flows(plans, jid)
        lp, sol = optimise_splits(
            plans.models[jid],
            flows,
            cycle_s=cycle_of.get(jid, plan.cycle_s),
            lanes=lanes,
            objective=objective,
        )
        out.plans[jid] = lp
        out.solutions[jid] = sol
    for art in runs:
        street = _street(art)
        reds, starts, periods = [], [], []
        for j in art.junctions:
            p = out.plans[j]
            k = arterial_stage(tw, p, street)
            reds.append(p.cycle_s - p.phases[k].green_s)
            starts.append(p.phase_starts()[k])
            periods.append(p.cycle_s)
        solved = dataclasses.replace(
            art, red_s=tuple(reds), green_start_s=tuple(starts), period_s=tuple(periods)
        )
        out.arterials[art.name] = solved
        try:
            band = maxband(solved, **dict(maxband_options or {}))
        except MaxbandInfeasibleError as exc:
            out.infeasible[art.name] = exc.binding
            continue
        out.bands[art.name] = band
        for j, off in zip(band["junction"].values, band["offset"].values, strict=True):
            p = out.plans[str(j)]
            p = dataclasses.replace(p, offset_s=round(float(off), 2) % p.cycle_s, plan_id="")
            validate(p, plans.models[str(j)])
            out.plans[str(j)] = p
    return out
