"""The traffic DES on a real twin: its drive network, its demand and its signalised junctions.

This module connects :mod:`twin.scenarios.traffic` (the mesoscopic DES) to a
:class:`~twin.model.Twin`:

* :func:`drive_graph`: a plain, picklable copy of the twin's drive network for the DES and for
  SUMO, with ``lanes`` *per direction* (the twin's edges carry the lanes of the whole way in
  ``lanes`` and those of one direction in ``lanes_dir``; a link's capacity is per direction);
* :func:`signal_plans`: fixed-time Webster plans (:func:`~twin.scenarios.signals.webster_plan`)
  for every signalised junction of the registry, from forecast flows on its approaches, with
  opposite approaches grouped into one phase by their bearing;
* :func:`scenario_from_twin`: a :class:`~twin.scenarios.traffic.TrafficScenario` for some hours
  of a day: the twin's car trips (:meth:`~twin.scenarios.demand.DemandModel.trips`), its
  plans, and incidents given by segment id;
* :func:`export_twin`: the back end of ``twin export sumo --city C --out DIR``: the same network,
  trips and plans as SUMO files, checked by a SUMO run.

Time: a scenario's ``t0`` is the start of its window (local hour ``hours[0]`` of ``day``, in
UTC); trip departures and incident windows count seconds from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import subprocess
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import networkx as nx
import numpy as np
import pandas as pd

from twin._errors import CorruptInputError, InputValidationError, UnknownAssetError
from twin.scenarios.demand import (
    DAY_TYPES,
    Demand,
    DemandModel,
    ProfileDemand,
    build_demand,
    day_type_of,
    local_slots,
    profile,
)
from twin.scenarios.drive import _first, drive_graph
from twin.scenarios.signals import EdgeKey, Phase, SignalPlan
from twin.scenarios.traffic import Incident, TrafficScenario, Trip
from twin.signals.junction import approaches_by_junction, junction_models
from twin.signals.plans import stage_ratios, webster
from twin.timeutil import validate_date

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "REFERENCE_WEEKDAY",
    "PlanSet",
    "drive_graph",
    "export_twin",
    "scenario_from_twin",
    "signal_plans",
]

log = logging.getLogger(__name__)

REFERENCE_WEEKDAY = dt.date(2024, 6, 4)
"""The weekday used when no day is given (a Tuesday outside school holidays)."""


def _node(value: Any) -> Hashable:
    """Registry node ids are stored as numbers or text; the graphs use ints where they can."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------------
# signal plans
# ------------------------------------------------------------------------------------------------
class PlanSet(dict[str, SignalPlan]):
    """Signal plans by junction id, with what was left out and the flows they were built on.

    A plain ``dict`` of :class:`~twin.scenarios.signals.SignalPlan` (picklable), plus:

    Attributes
    ----------
    skipped : dict of str to str
        Junctions without a plan and why (fewer than two approaches, no feasible plan).
    shared : dict of str to list
        Approaches left out of a junction's plan because an earlier junction controls them.
    adjusted : dict of str to str
        Oversaturated junctions whose light phases were given more than their flow asks for,
        so that every minimum green fits in the 120 s cycle.
    flows : pandas.DataFrame
        One row per vehicle signal group of a planned junction: ``junction``, ``u``, ``v``,
        ``key``, ``segment``, ``flow_pcu_h``, ``lanes``, ``bearing_deg``, ``kind``
        (``approach``, or ``link`` for a link inside a cluster run as sub-junctions: its cars
        came in by an approach, so demand is not drawn from it twice).
    time : numpy.datetime64
        Naive-UTC start of the hour the flows were taken at.
    models : dict of str to twin.signals.junction.JunctionModel
        The junction model each plan was built and validated on.
    local_hour : int
        Its local clock hour.
    """

    def __init__(self, plans: Mapping[str, SignalPlan] | None = None) -> None:
        super().__init__(plans or {})
        self.skipped: dict[str, str] = {}
        self.shared: dict[str, list[EdgeKey]] = {}
        self.adjusted: dict[str, str] = {}
        self.flows = pd.DataFrame()
        self.time = np.datetime64("NaT")
        self.local_hour = -1
        self.models: dict[str, Any] = {}

    def skipped_by_reason(self) -> dict[str, list[str]]:
        """The skipped junctions grouped by reason, the junction's own id taken out of it.

        Most frequent reason first.

        >>> ps = PlanSet()
        >>> ps.skipped = {"junction:3": "0 approaches",
        ...               "junction:7": "junction junction:7: it needs 5 stages",
        ...               "junction:9": "junction junction:9: it needs 5 stages"}
        >>> ps.skipped_by_reason()
        {'it needs 5 stages': ['junction:7', 'junction:9'], '0 approaches': ['junction:3']}
        """
        out: dict[str, list[str]] = {}
        for jid, reason in self.skipped.items():
            text = reason.replace(f"junction {jid}: ", "").replace(f"{jid}: ", "")
            out.setdefault(text, []).append(jid)
        return dict(sorted(out.items(), key=lambda kv: -len(kv[1])))

    def summary(self) -> str:
        """One line: plans, cycles, single-phase plans, skipped junctions and why."""
        why = "; ".join(
            f"{reason} ({len(ids)}: {', '.join(ids)})"
            for reason, ids in self.skipped_by_reason().items()
        )
        if not self:
            return f"0 plans; {len(self.skipped)} junctions skipped" + (f" ({why})" if why else "")
        cycles = np.array([p.cycle_s for p in self.values()])
        single = sum(len(p.phases) == 1 for p in self.values())
        return (
            f"{len(self)} plans (cycle {cycles.min():.0f}-{cycles.max():.0f} s, median "
            f"{np.median(cycles):.0f} s; {single} single-phase) at local hour "
            f"{self.local_hour:02d}; {len(self.skipped)} junctions skipped"
            + (f" ({why})" if why else "")
            + (f"; {len(self.adjusted)} oversaturated (adjusted)" if self.adjusted else "")
            + (f"; {sum(map(len, self.shared.values()))} shared approaches" if self.shared else "")
        )


def _assigned_flows(
    tw: Twin, model: DemandModel, *, hour: int, day_type: str
) -> dict[EdgeKey, float]:
    """Equilibrium flow (veh/h) of each drive edge in one local hour of a demand model."""
    from twin.scenarios.assignment import assign_hours

    ds = assign_hours(tw, hours=(hour,), day_type=day_type, model=model, rgap_target=1e-3)
    # assign_hours lists the edges in the drive graph's order
    keys = list(drive_graph(tw).edges(keys=True))
    return dict(zip(keys, ds["flow"].values[0].astype(float).tolist(), strict=True))


def signal_plans(
    tw: Twin,
    *,
    day: dt.date | str | None = None,
    hour: int | None = None,
    demand: Demand | None = None,
    model: DemandModel | None = None,
    tolerance_deg: float = 30.0,
    assume_crossings: bool | None = None,
) -> PlanSet:
    """Fixed-time Webster plans for every signalised junction of a twin.

    Parameters
    ----------
    tw : twin.model.Twin
    day : datetime.date or str, optional
        Local day whose flows size the plans (default :data:`REFERENCE_WEEKDAY`).
    hour : int, optional
        Local clock hour (0-23); default the busiest hour of ``day`` over all the approaches.
    demand : Demand, optional
        Anything with ``traffic(segments, times)`` in veh/h on both directions of each segment
        (:class:`~twin.scenarios.demand.ProfileDemand`, or
        :class:`~twin.scenarios.demand.SimulatedDemand` of a traffic run); default
        ``ProfileDemand.from_twin(tw)``.
    model : DemandModel, optional
        Size the plans on this demand model's flows instead (for instance the one a
        calibration wrote, :func:`twin.scenarios.calibration.load_calibrated_model`): its car
        OD of ``hour`` (default the busiest hour of the car profile of ``day``'s type) assigned
        to user equilibrium (:func:`twin.scenarios.assignment.assign_hours`, relative gap
        1e-3, as the weekday's routing times), each approach carrying its own edge's flow.
        Not with ``demand``.
    tolerance_deg : float
        Kept for compatibility: stages now come from each junction's model
        (:func:`twin.signals.junction.junction_models`), opposite approaches together.
    assume_crossings : bool, optional
        As in :func:`~twin.signals.junction.junction_models`.

    Returns
    -------
    PlanSet
        Plans keyed by junction id (``junction:N``), each safe by construction and validated
        against its junction model (:func:`twin.signals.plans.webster`): conflicting groups in
        different stages, intergreens from the junction's geometry, walks and pedestrian
        clearances. An approach's flow is its segment's traffic divided by the segment's
        number of drive directions (with ``model``: its edge's equilibrium flow); its lanes are
        the registry's (lanes in its direction); a link inside a cluster run as sub-junctions
        takes its flow (the same way) and lanes from its own edge. Junctions without a model
        (nothing that conflicts, more than four stages even as sub-junctions) or without a
        feasible plan are listed in :attr:`PlanSet.skipped` (and logged); the models are in
        :attr:`PlanSet.models`.
    """
    day = REFERENCE_WEEKDAY if day is None else validate_date(day, field="day")
    if hour is not None and (isinstance(hour, bool) or not 0 <= int(hour) <= 23):
        msg = f"hour: {hour!r} is not a local clock hour 0-23"
        raise InputValidationError(msg)
    if model is not None and demand is not None:
        msg = "demand, model: give one source of flows, not both"
        raise InputValidationError(msg)
    if model is not None and hour is None:
        hour = int(np.argmax(profile(day_type_of(day), mode="car")))
    demand = ProfileDemand.from_twin(tw) if demand is None and model is None else demand
    junctions = tw.registry["junction"]
    app = tw.registry["approach"]
    out = PlanSet()
    if len(junctions) == 0:
        return out
    times, hours = local_slots(day, slot_minutes=60, tz=tw.city.timezone)
    skipped: dict[str, str] = {}
    models = junction_models(tw, skipped=skipped, assume_crossings=assume_crossings)
    # the links inside a cluster run as sub-junctions are signal groups too: their flows
    links = [
        str(tw.graph.edges[e].get("segment"))
        for m in models.values()
        if m.parts
        for g in m.groups
        if (e := g.edge) is not None
    ]
    app_segs = pd.unique(app["segment"].astype(str)) if len(app) else np.array([], dtype=str)
    known = set(app_segs)
    extra = pd.unique(np.array([x for x in links if x not in known], dtype=str))
    segs = np.concatenate([app_segs, extra]).astype(str)
    rates = (
        np.asarray(demand.traffic(list(segs), times), dtype=float)
        if len(segs) and demand is not None
        else None
    )
    if rates is not None and rates.shape != (len(segs), len(times)):
        msg = f"demand.traffic: shape {rates.shape} is not ({len(segs)}, {len(times)})"
        raise InputValidationError(msg)
    if hour is None:
        # the busiest hour of the approaches (the links inside clusters carry the same cars)
        busy = rates[: len(app_segs)].sum(axis=0) if rates is not None else None
        col = int(np.argmax(busy)) if busy is not None else int(np.argmax(hours))
    else:
        hits = np.flatnonzero(hours == int(hour))
        if not hits.size:
            msg = f"hour: local hour {hour} does not exist on {day} (clock change)"
            raise InputValidationError(msg)
        col = int(hits[0])
    out.time, out.local_hour = times[col], int(hours[col])
    seg_flow = dict(zip(segs, rates[:, col], strict=True)) if rates is not None else {}
    edge_flow = (
        _assigned_flows(tw, model, hour=out.local_hour, day_type=day_type_of(day))
        if model is not None
        else None
    )
    n_dir: dict[str, int] = {}
    for _, _, s in tw.drive.edges(data="segment"):
        n_dir[str(s)] = n_dir.get(str(s), 0) + 1
    graph = tw.graph
    by_junction = approaches_by_junction(app)
    out.models = models
    taken: dict[EdgeKey, str] = {}
    flow_rows: list[dict[str, Any]] = []
    for jid in junctions.index.astype(str):
        rows = by_junction.get(jid)
        flows: dict[str, float] = {}
        lanes: dict[str, int] = {}
        keys: dict[str, EdgeKey] = {}
        bearings: dict[str, float] = {}
        for r in rows or ():
            key = (_node(r.u), _node(r.v), int(r.key))
            if not graph.has_edge(*key):
                msg = f"approach {r.id!r} of {jid}: edge {key!r} is not in the twin's graph"
                raise InputValidationError(msg)
            if key in taken:
                out.shared.setdefault(jid, []).append(key)
                continue
            taken[key] = jid
            seg = str(r.segment)
            if edge_flow is not None:
                flows[str(r.id)] = float(edge_flow.get(key, 0.0))
            else:
                flows[str(r.id)] = float(seg_flow.get(seg, 0.0)) / max(n_dir.get(seg, 1), 1)
            lanes[str(r.id)] = max(int(r.lanes), 1)
            keys[str(r.id)] = key
            bearings[str(r.id)] = float(r.bearing_deg)
        jmodel = models.get(jid)
        if jmodel is None:
            out.skipped[jid] = skipped.get(jid, "no junction model")
            continue
        link_groups: set[str] = set()
        for g in jmodel.vehicle_groups:  # links inside a cluster run as sub-junctions
            edge = jmodel.group(g).edge
            if g in flows or edge is None:
                continue
            link_groups.add(g)
            key = edge
            d = graph.edges[key]
            seg = str(d.get("segment"))
            if edge_flow is not None:
                flows[g] = float(edge_flow.get(key, 0.0))
            else:
                flows[g] = float(seg_flow.get(seg, 0.0)) / max(n_dir.get(seg, 1), 1)
            lanes[g] = max(int(float(_first(d.get("lanes_dir", d.get("lanes", 1))) or 1)), 1)
            keys[g] = key
            du, dv = graph.nodes[key[0]], graph.nodes[key[1]]
            bearings[g] = math.degrees(math.atan2(dv["x"] - du["x"], dv["y"] - du["y"])) % 360.0
        try:
            plan = webster(jmodel, flows, lanes=lanes)
        except InputValidationError as exc:
            out.skipped[jid] = f"no feasible plan ({exc})"
            continue
        ys = stage_ratios(jmodel, flows, lanes=lanes)
        if sum(ys) >= 1.0:
            out.adjusted[jid] = f"oversaturated (Y = {sum(ys):.2f}): cycle {plan.cycle_s:.0f} s"
        out[jid] = plan
        for aid, q in flows.items():
            key = keys[aid]
            flow_rows.append(
                {
                    "junction": jid,
                    "u": key[0],
                    "v": key[1],
                    "key": key[2],
                    "segment": graph.edges[key].get("segment"),
                    "flow_pcu_h": q,
                    "lanes": lanes[aid],
                    "bearing_deg": bearings[aid],
                    "kind": "link" if aid in link_groups else "approach",
                }
            )
    out.flows = pd.DataFrame(
        flow_rows,
        columns=[
            "junction",
            "u",
            "v",
            "key",
            "segment",
            "flow_pcu_h",
            "lanes",
            "bearing_deg",
            "kind",
        ],
    )
    if out.skipped:
        log.warning("signal plans of %s: %s", tw.city.name, out.summary())
    return out


# ------------------------------------------------------------------------------------------------
# scenarios
# ------------------------------------------------------------------------------------------------
def _window(
    day: dt.date, hours: tuple[float, float] | None, tz: str
) -> tuple[dt.datetime, float, float]:
    """UTC start of the local day, and the window (s since local midnight) of ``hours``."""
    zone = ZoneInfo(tz)
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.UTC)
    nxt = day + dt.timedelta(days=1)
    day_s = (
        dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(dt.UTC) - midnight
    ).total_seconds()
    if hours is None:
        return midnight, 0.0, day_s
    try:
        h0, h1 = (float(h) for h in hours)
    except (TypeError, ValueError):
        msg = f"hours: {hours!r} is not a pair (start, end) of local hours"
        raise InputValidationError(msg) from None
    if not 0 <= h0 < h1 <= 24:
        msg = f"hours: {hours!r} must satisfy 0 <= start < end <= 24 (local clock hours)"
        raise InputValidationError(msg)

    def at(h: float) -> float:
        if h >= 24:
            return day_s
        whole = int(h)
        local = dt.datetime(day.year, day.month, day.day, whole, tzinfo=zone)
        since = (local.astimezone(dt.UTC) - midnight).total_seconds()
        return since + (h - whole) * 3600.0

    return midnight, at(h0), at(h1)


def _resolve_incidents(
    graph: nx.MultiDiGraph, incidents: Iterable[Incident]
) -> tuple[Incident, ...]:
    by_segment: dict[str, list[EdgeKey]] = {}
    for u, v, k, s in graph.edges(keys=True, data="segment"):
        by_segment.setdefault(str(s), []).append((u, v, k))
    out: list[Incident] = []
    for inc in incidents:
        if not isinstance(inc, Incident):
            msg = f"incidents: {inc!r} is not an Incident"
            raise InputValidationError(msg)
        if isinstance(inc.edge, str):
            edges = by_segment.get(inc.edge)
            if not edges:
                msg = (
                    f"Incident.edge: segment {inc.edge!r} is not on the drive network of "
                    f"{graph.graph.get('city', 'the twin')!r}"
                )
                raise UnknownAssetError(msg)
            out += [Incident(e, inc.lanes_closed, inc.start_s, inc.end_s) for e in edges]
            continue
        e = inc.edge
        key = None
        if isinstance(e, tuple | list) and len(e) in (2, 3):
            key = (e[0], e[1], int(e[2]) if len(e) == 3 else 0)
        if key is None or not graph.has_edge(*key):
            msg = f"Incident.edge: {e!r} is not a segment id or an edge of the drive network"
            raise UnknownAssetError(msg)
        out.append(Incident(key, inc.lanes_closed, inc.start_s, inc.end_s))
    return tuple(out)


def scenario_from_twin(
    tw: Twin,
    *,
    day: dt.date | str,
    day_type: str | None = None,
    hours: tuple[float, float] | None = None,
    rng: np.random.Generator | int | None = None,
    incidents: Iterable[Incident] = (),
    plans: Mapping[str, SignalPlan] | Iterable[SignalPlan] | None = None,
    max_trips: int | None = None,
    model: DemandModel | None = None,
    dt_s: float = 2.0,
    slot_s: float = 900.0,
    duration_s: float | None = None,
    progress: bool | None = None,
) -> TrafficScenario:
    """A traffic scenario of some hours of a day on a twin's drive network.

    Parameters
    ----------
    tw : twin.model.Twin
    day : datetime.date or str
        Local calendar day.
    day_type : {"weekday", "saturday", "sunday"}, optional
        Demand profile (default from ``day``; give ``"sunday"`` for a public holiday).
    hours : (float, float), optional
        Local clock window ``[start, end)``, e.g. ``(7, 10)``; default the whole day. Trips
        departing in it are kept; ``t0`` is its start.
    rng : numpy.random.Generator or int, optional
        Draws the trips (and the subsample of ``max_trips``).
    incidents : iterable of Incident
        Lane closures; ``Incident.edge`` is a drive edge ``(u, v, key)`` or a segment id
        (``"segment:000123"``: every drive direction of it). Times in s since ``t0``.
    plans : mapping or iterable of SignalPlan, optional
        Default :func:`signal_plans` of ``day`` at the window's busiest hour (by the car
        profile of the day type).
    max_trips : int, optional
        Keep a random subsample of at most this many trips (departure order kept).
    model : DemandModel, optional
        Demand model (default :func:`~twin.scenarios.demand.build_demand` of ``tw``).
    dt_s, slot_s, duration_s, progress
        As in :class:`~twin.scenarios.traffic.TrafficScenario`.

    Returns
    -------
    TrafficScenario
        On :func:`drive_graph` of the twin; trips ``t<n>`` from origin to destination node
        without routes (the DES routes them on current costs).

    Raises
    ------
    UnknownAssetError
        If an incident names a segment or edge that is not on the drive network.
    """
    day = validate_date(day, field="day")
    if day_type is not None and day_type not in DAY_TYPES:
        msg = f"day_type: {day_type!r} is not one of {DAY_TYPES}"
        raise InputValidationError(msg)
    if max_trips is not None and (isinstance(max_trips, bool) or int(max_trips) < 1):
        msg = f"max_trips: {max_trips!r} must be a positive number of trips"
        raise InputValidationError(msg)
    gen = np.random.default_rng(rng)
    graph = drive_graph(tw)
    resolved = _resolve_incidents(graph, incidents)
    midnight, w0, w1 = _window(day, hours, tw.city.timezone)
    model = build_demand(tw) if model is None else model
    frame = model.trips(day_type=day_type or day_type_of(day), rng=gen, day=day)
    dep = frame["depart_s"].to_numpy(float)
    inside = np.flatnonzero((dep >= w0) & (dep < w1))
    if max_trips is not None and inside.size > max_trips:
        inside = np.sort(gen.choice(inside, int(max_trips), replace=False))
    orig = frame["origin"].to_numpy(object)
    dest = frame["destination"].to_numpy(object)
    trips = tuple(Trip(f"t{i}", _node(orig[i]), _node(dest[i]), float(dep[i] - w0)) for i in inside)
    if not trips:
        msg = f"hours: no car trip departs in {hours!r} on {day} for {tw.city.name!r}"
        raise InputValidationError(msg)
    if plans is None:
        # the plans of the busiest hour of the window (the day's when no window is given)
        prof = profile(day_type or day_type_of(day), mode="car")
        lo, hi = (0, 24) if hours is None else (int(hours[0]), max(math.ceil(hours[1]), 1))
        hour = lo + int(np.argmax(prof[lo:hi]))
        plan_list: list[SignalPlan] = list(signal_plans(tw, day=day, hour=hour).values())
    elif isinstance(plans, Mapping):
        plan_list = list(plans.values())
    else:
        plan_list = list(plans)
    return TrafficScenario(
        graph,
        trips=trips,
        plans=tuple(plan_list),
        incidents=resolved,
        t0=midnight + dt.timedelta(seconds=w0),
        duration_s=duration_s,
        dt_s=dt_s,
        slot_s=slot_s,
        progress=progress,
    )


# ------------------------------------------------------------------------------------------------
# SUMO export
# ------------------------------------------------------------------------------------------------
def _export_plans(graph: nx.MultiDiGraph, plans: Sequence[SignalPlan]) -> list[SignalPlan]:
    """Plans as SUMO needs them: edges *inside* a junction are green in every phase.

    SUMO controls every link entering a traffic-light node. When a junction spans several graph
    nodes, the edges between them are not approaches of the plan (the DES leaves them
    uncontrolled); giving them green in every phase keeps them uncontrolled in SUMO too.
    """
    out = []
    for plan in plans:
        members = {a[1] for a in plan.approaches}
        inner = sorted(
            {
                (u, v, k)
                for n in members
                for u, v, k in graph.in_edges(n, keys=True)
                if (u, v, k) not in set(plan.approaches)
            },
            key=repr,
        )
        if not inner:
            out.append(plan)
            continue
        phases = tuple(Phase((*p.approaches, *inner), p.green_s) for p in plan.phases)
        out.append(
            SignalPlan(
                plan.junction,
                plan.cycle_s,
                plan.offset_s,
                phases,
                amber_s=plan.amber_s,
                all_red_s=plan.all_red_s,
                min_green_s=plan.min_green_s,
            )
        )
    return out


def export_twin(
    tw: Twin,
    out_dir: str | Path,
    *,
    day: dt.date | str | None = None,
    hours: tuple[float, float] = (7, 9),
    rng: np.random.Generator | int | None = 2018,
    check: bool = True,
    plans: Mapping[str, SignalPlan] | None = None,
    model: DemandModel | None = None,
) -> int:
    """Back end of ``twin export sumo --city C --out DIR``.

    Writes the twin's drive network (:func:`drive_graph`; SUMO edge ids ``<u>_<v>_<key>``),
    the car trips of ``hours`` of ``day`` (SUMO ``<trip>`` elements, departures in s since the
    window's start) and the Webster plans of :func:`signal_plans` (a ``tlLogic`` additional
    file, programme ``twin``), then, with ``check``, runs SUMO on them to the end.

    Parameters
    ----------
    tw : twin.model.Twin
    out_dir : str or Path
        Folder (created); files ``twin.nod.xml``, ``twin.edg.xml``, ``twin.net.xml``,
        ``twin.rou.xml``, ``twin.tls.add.xml``, ``twin.sumocfg``.
    day : datetime.date or str, optional
        Default :data:`REFERENCE_WEEKDAY`.
    hours : (float, float)
        Local window of the trips.
    rng : numpy.random.Generator or int, optional
        Draws the trips.
    check : bool
        Run SUMO (mesoscopic mode) on the written configuration to the end; a failure raises
        :class:`~twin._errors.CorruptInputError` with SUMO's message.
    plans : mapping of junction id to SignalPlan, optional
        The plans to export (e.g. optimised and coordinated ones, with their offsets); default
        the Webster plans of :func:`signal_plans`.
    model : DemandModel, optional
        The demand model whose trips are exported (default: the twin's,
        :func:`~twin.scenarios.zones.build_demand`).

    Returns
    -------
    int
        Number of trips written.
    """
    from twin.sumo import export_sumo, sumo_binary  # SUMO is only needed here

    day = REFERENCE_WEEKDAY if day is None else validate_date(day, field="day")
    sc = scenario_from_twin(tw, day=day, hours=hours, rng=rng, plans=plans, model=model)
    graph = _sumo_graph(sc.graph, sc.plans)
    paths = export_sumo(
        graph,
        out_dir=out_dir,
        trips=sc.trips,
        plans=_export_plans(graph, sc.plans),
        check=False,
    )
    if check:
        # SUMO's mesoscopic mode loads and validates the same files (network, every route,
        # the signal programmes) as the microscopic one, in a fraction of the time on a city
        end = max(t.depart_s for t in sc.trips) + 3600.0
        cmd = [
            sumo_binary("sumo"),
            "-c",
            str(paths["config"]),
            "--mesosim",
            "--no-step-log",
            "--no-warnings",
            "--end",
            f"{math.ceil(end)}",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            msg = f"sumo failed on {paths['config']} (exit {res.returncode}): {res.stderr[-2000:]}"
            raise CorruptInputError(msg)
    return len(sc.trips)


def _sumo_graph(graph: nx.MultiDiGraph, plans: Sequence[SignalPlan]) -> nx.MultiDiGraph:
    """The main strongly connected part of the drive graph, plus the edges the plans control.

    SUMO routes a ``<trip>`` from the first edge leaving its origin to the first edge entering
    its destination (:func:`twin.sumo.write_sumo`): keeping only the part where every edge
    reaches every other makes every trip routable. Its nodes and edges come first, so that those
    first edges are in it; self-loops are left out (``netconvert`` drops them).
    """
    main = max(nx.strongly_connected_components(graph), key=len)
    extra = {a for p in plans for a in p.approaches if not (a[0] in main and a[1] in main)}
    for p in plans:  # edges inside a junction, between the ends of its approaches
        ends = {a[1] for a in p.approaches}
        extra |= {(u, v, k) for n in ends for u, v, k in graph.in_edges(n, keys=True)}
    out = nx.MultiDiGraph(**graph.graph)
    ends = {n for e in extra for n in e[:2]}
    nodes = [n for n in graph.nodes if n in main]
    nodes += [n for n in graph.nodes if n not in main and n in ends]
    out.add_nodes_from((n, graph.nodes[n]) for n in nodes)
    for u, v, k, d in graph.edges(keys=True, data=True):
        if u != v and u in main and v in main:
            out.add_edge(u, v, key=k, **d, sumo_id=f"{u}_{v}_{k}")
    for u, v, k in sorted(extra - set(out.edges(keys=True)), key=repr):
        if u != v:
            out.add_edge(u, v, key=k, **graph.edges[u, v, k], sumo_id=f"{u}_{v}_{k}")
    return out
