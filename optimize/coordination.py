"""A city's signal plans optimised and coordinated: LP splits, common cycles, MAXBAND offsets.

:func:`coordinated_plans` is the whole chain from the Webster plans of
:func:`twin.scenarios.network.signal_plans` to the plans that go to the street (and to SUMO):

1. the arterial corridors of the data (:func:`optimize.maxband.corridors`, five or more
   consecutive signals along one street), longest first; a corridor sharing a junction with a
   longer one already coordinated is left out (its junctions cannot follow two offsets);
2. every junction of a corridor is re-timed at the corridor's common cycle (its longest Webster
   cycle), every other junction keeps its Webster cycle; the green splits of each are the
   LP's (:func:`optimize.signals.optimise_splits`, validated; by default the splits of
   greatest reserve capacity);
3. MAXBAND (Little, Kelson and Gartner 1981) on each corridor, its reds and green starts those
   of the re-timed plans; its offsets become the plans' ``offset_s``. An infeasible corridor
   keeps offsets 0 and is reported with its binding constraints.

Every plan returned passes :func:`twin.signals.safety.validate` on its junction model (the
offset does not change what a junction shows within its cycle).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import xarray as xr

from optimize.maxband import (
    Arterial,
    MaxbandInfeasibleError,
    arterial_stage,
    corridors,
    maxband,
)
from optimize.signals import optimise_splits
from twin._errors import UnknownAssetError
from twin.scenarios.signals import SignalPlan
from twin.signals.junction import nearest_ids
from twin.signals.safety import validate

__all__ = ["Coordination", "coordinated_plans", "junction_flows"]


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
        The split LP's solution per junction.
    """

    plans: dict[str, SignalPlan]
    bands: dict[str, xr.Dataset] = dataclasses.field(default_factory=dict)
    arterials: dict[str, Arterial] = dataclasses.field(default_factory=dict)
    infeasible: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)
    solutions: dict[str, xr.Dataset] = dataclasses.field(default_factory=dict)


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


def coordinated_plans(
    tw: Any,
    plans: Any,
    *,
    corridor: str | None = None,
    max_corridors: int | None = None,
    objective: str = "reserve",
    maxband_options: Mapping[str, Any] | None = None,
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

    Returns
    -------
    Coordination

    Raises
    ------
    UnknownAssetError
        If ``corridor`` names no corridor of the city; the message lists the nearest names.
    """
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
    for art in arts:
        shared = [j for j in art.junctions if j in corridor_of]
        if shared:
            out.left_out[art.name] = (
                f"shares {shared[0]} with {corridor_of[shared[0]]}, coordinated first"
            )
            continue
        for j in art.junctions:
            corridor_of[j] = art.name
            cycle_of[j] = art.cycle_s
    for jid, plan in plans.items():
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
    for art in arts:
        if art.name in out.left_out:
            continue
        street = _street(art)
        reds, starts = [], []
        for j in art.junctions:
            p = out.plans[j]
            k = arterial_stage(tw, p, street)
            reds.append(p.cycle_s - p.phases[k].green_s)
            starts.append(p.phase_starts()[k])
        solved = dataclasses.replace(art, red_s=tuple(reds), green_start_s=tuple(starts))
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
