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
3. every junction of a coordinated run is re-timed at the run's common cycle (its longest
   Webster cycle ``C``), except that a junction whose Webster cycle is at most ``C / 2`` runs
   at ``C / 2`` (double cycling, where ``C / 2`` is at least the 40 s minimum): it keeps short
   waits on its side streets and still repeats with the common cycle; the green splits of each
   junction of a run are the LP's (:func:`optimize.signals.optimise_splits`, validated; by
   default the splits of greatest reserve capacity); every other junction keeps its Webster
   plan (``split_all`` gives them the LP's splits too);
4. MAXBAND (Little, Kelson and Gartner 1981) on each run, its reds and green starts those of
   the re-timed plans (a double-cycled signal's red recurs every half cycle, and a band may
   pass in either of its two greens: counting one green per common cycle made 10 of
   Montpellier's 19 corridors infeasible once their counted flows coupled whole corridors at
   120 s); its offsets become the plans' ``offset_s``. An infeasible run keeps offsets 0
   and is reported with its binding constraints.

Every plan returned passes :func:`twin.signals.safety.validate` on its junction model (the
offset does not change what a junction shows within its cycle).

In the city-wide traffic DES of Montpellier's morning peak (8-9 h, one queue per lane), the
planning demand grid-locks (10,600 to 17,200 trips unfinished) and where it does moves with
the seed: the fixed-time Webster plans give a mean stop-line delay of 205 s/veh, the default
coordination 193 (-6%); with seed 2 instead of 2018, 231 and 172 (-25%; 11,300 trips
unfinished against 17,200). With seed 2018 the 125 re-timed junctions gain (229 to 189 s/veh)
and the 195 unchanged ones do not (191 to 196); with seed 2 the unchanged ones gain almost as
much as the re-timed (-52 and -69 s/veh): part of the difference is where the grid-lock
settles, not the re-timed junctions. Over the two seeds the default is 16% below Webster (183
against 218). Whole corridors at their longest cycle with the LP's splits everywhere: 153 with
seed 2018 (10,600 trips unfinished).
benchmarks/signals.py prints the figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
from twin.scenarios.signals import CYCLE_MIN_S, SignalPlan
from twin.signals.junction import nearest_ids
from twin.signals.safety import validate

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["Coordination", "coordinated_plans", "coupling_index", "junction_flows"]

FEET_PER_M = 1.0 / 0.3048


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


def coupling_index(tw: Twin, plans: Any, art: Arterial) -> tuple[float, ...]:
    """Coupling index of each link of an arterial: two-way volume over length (veh/h per ft).

    The volume of the link from signal ``i`` to ``i + 1`` is the planning flow
    (``plans.flows``, pcu/h) of the street's approaches of ``i + 1`` that come from ``i`` plus
    that of the approaches of ``i`` that come from ``i + 1`` (Traffic Signal Timing Manual,
    FHWA-HOP-08-024, 2008, section 6.2).
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

    out = []
    for i, d in enumerate(art.distances_m):
        a, b = art.junctions[i], art.junctions[i + 1]
        out.append((inflow(b, a) + inflow(a, b)) / (d * FEET_PER_M))
    return tuple(out)


def _coupled_runs(art: Arterial, index: tuple[float, ...], minimum: float) -> list[Arterial]:
    runs: list[list[int]] = [[0]]
    for i, c in enumerate(index):
        if c >= minimum:
            runs[-1].append(i + 1)
        else:
            runs.append([i + 1])
    street = _street(art)
    out = []
    for run in runs:
        if len(run) < 2:
            continue
        js = tuple(art.junctions[i] for i in run)
        name = art.name if len(run) == len(art.junctions) else f"{street} ({js[0]}-{js[-1]})"
        out.append(
            Arterial(
                name,
                js,
                tuple(art.distances_m[i] for i in run[:-1]),
                tuple(art.red_s[i] for i in run),
                art.cycle_s,
                tuple(art.green_start_s[i] for i in run),
                tuple(art.speed_limit_kph[i] for i in run[:-1]),
            )
        )
    return out


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
        index = coupling_index(tw, plans, art)
        out.coupling[art.name] = index
        mine = _coupled_runs(art, index, min_coupling)
        coordinated = {j for r in mine for j in r.junctions}
        out.isolated |= set(art.junctions) - coordinated
        for r in mine:
            common = max(plans[j].cycle_s for j in r.junctions)
            half = common / 2
            for j in r.junctions:
                if double_cycling and half >= CYCLE_MIN_S and plans[j].cycle_s <= half:
                    cycle_of[j] = half
                    out.double_cycled.add(j)
                else:
                    cycle_of[j] = common
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
