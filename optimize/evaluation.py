"""Signal plans judged against fixed-time baselines: delay, stops, bands, emergency and bus waits.

* :func:`des_comparison`: the traffic DES (:mod:`twin.scenarios.traffic`) run on the same trips
  under each set of plans; per junction the flow-weighted mean stop-line ``delay`` the DES
  measures on its approaches, and the share of vehicles that ``stops`` there as the DES counts
  them (a vehicle held at the stop line past the time it reached it: by the red, by the queue
  ahead, or by a full street beyond), flow-weighted over the approaches; beside it, the
  ``stops_formula`` of Akçelik's uniform-arrival stop rate ``h = 0.9 (1 - g/C) / (1 - y)``
  (Akçelik 1981, *Traffic signals: capacity and timing analysis*, ARR 123, eq. 8.4) for the
  planning flows.
* :func:`achieved_band`: the band a corridor's plans really leave: departures every 0.5 s over
  an hour at the progression speeds, the share that passes every signal of the corridor without
  meeting a red, times the corridor's cycle (for periodic plans at a common cycle this is the
  band's width; for plans at different cycles, its mean).
* :func:`emergency_waits`: the signal wait of an emergency vehicle at each signal of a corridor,
  averaged over the moment of its call, without and with preemption
  (:func:`optimize.signals.preemption`, the vehicle called ``lead_s`` ahead of the stop line).
* :func:`bus_waits`: the signal wait of a bus on each bus approach, averaged over its arrival
  second in the cycle, without priority and with it (the controller runs the green extension
  or the early green, whichever the bus's arrival calls for).

* :func:`corridor_vs_sumo`: one corridor, its sub-network and fixed-route trips, in the DES
  and in SUMO (microscopic) under each set of plans: the change of mean travel time that each
  simulator gives.

The waits of :func:`emergency_waits` and :func:`bus_waits` are exact for a vehicle at the head
of the queue (one that the queue does not hold up: a bus lane, an emergency vehicle with
sirens). The DES runs measure what the queues do to them:

* :func:`des_emergency`: emergency vehicles driven through the DES along a corridor among its
  traffic; with preemption, each signal is called from a check-in ahead of its stop line and
  held while the vehicle waits in the queue it clears;
* :func:`des_buses`: buses (:func:`bus_trips`) among a city's DES traffic; with priority, the
  controller answers each check-in with the green extension or the early green when it serves
  the bus sooner, spliced into the running cycle and validated.

Both switch programmes through the simulation's public calls
(:meth:`~twin.scenarios.traffic.TrafficSimulation.set_program`, ``set_plan``, ``locate``),
the junction programmes turned into DES programmes by :func:`des_program`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from optimize.maxband import Arterial
from optimize.signals import BusPriority, preemption, signal_delay
from twin.scenarios.signals import SignalPlan
from twin.signals.junction import JunctionModel
from twin.signals.plans import stage_ratios
from twin.signals.safety import program_of

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "achieved_band",
    "arterial_route",
    "bus_trips",
    "bus_waits",
    "corridor_demand",
    "corridor_vs_sumo",
    "des_buses",
    "des_comparison",
    "des_emergency",
    "des_program",
    "emergency_waits",
    "stop_rate",
    "uniform_delay",
]


def uniform_delay(
    plan: SignalPlan,
    model: JunctionModel,
    flows: Mapping[str, float],
    lanes: Mapping[str, int] | None = None,
) -> float:
    """Flow-weighted uniform delay of a plan (s/veh), Webster (1958)'s first term.

    ``d = C (1 - g/C)^2 / (2 (1 - x g/C))`` per stage, ``x`` its degree of saturation (capped
    at 0.99).
    """
    ys = stage_ratios(model, flows, lanes=lanes)
    tot = q_sum = 0.0
    for k, ph in enumerate(plan.phases):
        lam = ph.green_s / plan.cycle_s
        y = min(ys[k], 0.99)
        d = plan.cycle_s * (1 - lam) ** 2 / (2 * (1 - min(y / lam, 0.99) * lam))
        q = sum(flows.get(model.group_of_edge(a), 0.0) for a in ph.approaches)
        tot += q * d
        q_sum += q
    return tot / q_sum if q_sum else 0.0


def stop_rate(
    plan: SignalPlan,
    model: JunctionModel,
    flows: Mapping[str, float],
    lanes: Mapping[str, int] | None = None,
) -> float:
    """Flow-weighted share of vehicles stopped, Akçelik's ``0.9 (1 - g/C) / (1 - y)``.

    ``y`` is each stage's critical flow ratio (capped at 0.95 where oversaturated).
    """
    ys = stage_ratios(model, flows, lanes=lanes)
    tot = q_sum = 0.0
    for k, ph in enumerate(plan.phases):
        lam = ph.green_s / plan.cycle_s
        y = min(ys[k], 0.95)
        h = min(0.9 * (1 - lam) / (1 - y), 1.0)
        q = sum(flows.get(model.group_of_edge(a), 0.0) for a in ph.approaches)
        tot += q * h
        q_sum += q
    return tot / q_sum if q_sum else 0.0


def des_comparison(
    tw: Twin,
    plan_sets: Mapping[str, Mapping[str, SignalPlan]],
    *,
    models: Mapping[str, JunctionModel],
    flows: Mapping[str, tuple[Mapping[str, float], Mapping[str, int]]],
    day: dt.date | str,
    hours: tuple[float, float] = (8, 9),
    rng: int = 2018,
) -> xr.Dataset:
    """Run the traffic DES under each set of plans, on the same trips.

    Parameters
    ----------
    tw : twin.model.Twin
    plan_sets : mapping of scenario name to plans by junction
    models : junction models the plans were made on
    flows : per junction, the ``(flows, lanes)`` of its groups (for the stop rate)
    day, hours : the local window of the trips
    rng : seed of the trips and of the DES

    Returns
    -------
    xarray.Dataset
        Dims ``scenario`` and ``junction`` (the junctions planned in every set): ``delay``
        (s/veh, DES), ``volume`` (veh through the junction's approaches, DES), ``stops``
        (share stopped, DES), ``stops_formula`` (share stopped, Akçelik); per scenario
        ``mean_delay`` and ``mean_stops`` (flow-weighted),
        ``travel_time`` (mean over finished trips, s) and ``unfinished`` (trips).
    """
    from twin.scenarios.network import scenario_from_twin
    from twin.scenarios.traffic import run

    names = list(plan_sets)
    common = sorted(set.intersection(*(set(p) for p in plan_sets.values())))
    delay = np.full((len(names), len(common)), np.nan)
    volume = np.zeros((len(names), len(common)))
    stops = np.full((len(names), len(common)), np.nan)
    formula = np.full((len(names), len(common)), np.nan)
    tt, unfinished = [], []
    pos = {j: i for i, j in enumerate(common)}
    for s, name in enumerate(names):
        plans = {j: plan_sets[name][j] for j in common}
        sc = scenario_from_twin(tw, day=day, hours=hours, rng=rng, plans=plans, progress=False)
        ds = run(sc, rng=rng)
        d = ds["delay"].values
        h = ds["stops"].values
        v = ds["approach_volume"].values
        js = ds["junction"].values.astype(str)
        for j in common:
            m = (js == j) & np.isfinite(d)
            if m.any() and v[m].sum() > 0:
                delay[s, pos[j]] = float((d[m] * v[m]).sum() / v[m].sum())
                stops[s, pos[j]] = float((h[m] * v[m]).sum() / v[m].sum())
                volume[s, pos[j]] = float(v[m].sum())
            q, ln = flows[j]
            formula[s, pos[j]] = stop_rate(plans[j], models[j], q, ln)
        tt.append(float(np.nanmean(ds["travel_time"].values)))
        unfinished.append(int(ds.attrs.get("n_unfinished", 0)))
    w = np.where(np.isfinite(delay), volume, 0.0)
    mean_delay = np.nansum(np.nan_to_num(delay) * w, axis=1) / np.maximum(w.sum(axis=1), 1e-9)
    mean_stops = np.nansum(np.nan_to_num(stops) * w, axis=1) / np.maximum(w.sum(axis=1), 1e-9)
    return xr.Dataset(
        {
            "delay": (
                ("scenario", "junction"),
                delay,
                {"units": "s", "long_name": "mean stop-line delay per vehicle (DES)"},
            ),
            "volume": (
                ("scenario", "junction"),
                volume,
                {"units": "veh", "long_name": "vehicles through the approaches (DES)"},
            ),
            "stops": (
                ("scenario", "junction"),
                stops,
                {"units": "1", "long_name": "share of vehicles stopped at the stop line (DES)"},
            ),
            "stops_formula": (
                ("scenario", "junction"),
                formula,
                {"units": "1", "long_name": "share of vehicles stopped (Akçelik 1981)"},
            ),
            "mean_delay": (
                "scenario",
                mean_delay,
                {"units": "s", "long_name": "flow-weighted mean delay per vehicle"},
            ),
            "mean_stops": (
                "scenario",
                mean_stops,
                {"units": "1", "long_name": "flow-weighted share of vehicles stopped (DES)"},
            ),
            "travel_time": (
                "scenario",
                tt,
                {"units": "s", "long_name": "mean travel time of finished trips"},
            ),
            "unfinished": ("scenario", unfinished, {"units": "1", "long_name": "trips"}),
        },
        coords={"scenario": names, "junction": common},
        attrs={"hours": f"{hours[0]:g}-{hours[1]:g}", "day": str(day)},
    )


def _arterial_windows(
    plan: SignalPlan, stage: int
) -> tuple[float, float, float]:  # (cycle, green start incl. offset, green length)
    return plan.cycle_s, plan.offset_s + plan.phase_starts()[stage], plan.phases[stage].green_s


def achieved_band(
    plans: Sequence[SignalPlan],
    stages: Sequence[int],
    art: Arterial,
    speeds_out_kph: Sequence[float],
    speeds_in_kph: Sequence[float],
) -> tuple[float, float]:
    """Outbound and inbound bands (s) that the plans leave along ``art`` (module docstring)."""
    pos = np.concatenate([[0.0], np.cumsum(art.distances_m)])
    wins = [_arterial_windows(p, k) for p, k in zip(plans, stages, strict=True)]

    def share(times_at: np.ndarray) -> float:
        t0 = np.arange(0.0, 3600.0, 0.5)
        ok = np.ones_like(t0, dtype=bool)
        for i, (c, start, g) in enumerate(wins):
            ok &= ((t0 + times_at[i] - start) % c) < g
        return float(ok.mean())

    v_out = np.asarray(speeds_out_kph) / 3.6
    v_in = np.asarray(speeds_in_kph) / 3.6
    t_out = np.concatenate([[0.0], np.cumsum(np.diff(pos) / v_out)])
    t_in_rev = np.concatenate([[0.0], np.cumsum((np.diff(pos) / v_in)[::-1])])
    t_in = t_in_rev[::-1]
    return share(t_out) * art.cycle_s, share(t_in) * art.cycle_s


def emergency_waits(
    plans: Sequence[SignalPlan],
    models: Sequence[JunctionModel],
    groups: Sequence[str],
    *,
    lead_s: float = 15.0,
    step_s: float = 5.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean wait (s) at each signal without and with preemption, and the calls refused.

    A call for which no safe preemption sequence exists is served by the plan (and counted).
    """
    without, with_, refused = [], [], 0
    for plan, model, grp in zip(plans, models, groups, strict=True):
        base = program_of(plan, model)
        calls = np.arange(0.0, plan.cycle_s, step_s)
        without.append(float(signal_delay(base, grp, (calls + lead_s).tolist()).mean()))
        waits = []
        for c in calls:
            try:
                prog = preemption(plan, model, grp, call_s=float(c))
            except ValueError:
                refused += 1
                waits.append(float(signal_delay(base, grp, [float(c) + lead_s])[0]))
                continue
            start = float(c) - (float(c) - plan.offset_s) % plan.cycle_s  # the call's cycle
            waits.append(float(signal_delay(prog, grp, [float(c) + lead_s - start])[0]))
        with_.append(float(np.mean(waits)))
    return np.asarray(without), np.asarray(with_), refused


def bus_waits(
    plans: Mapping[str, SignalPlan],
    models: Mapping[str, JunctionModel],
    priorities: Mapping[str, Sequence[BusPriority]],
) -> xr.Dataset:
    """Mean signal wait of a bus per bus approach, without and with priority (s).

    Returns
    -------
    xarray.Dataset
        Dim ``approach`` (``junction/group``): ``without``, ``with`` (s), ``extend_s``,
        ``early_s``.
    """
    rows = []
    for jid, items in priorities.items():
        base = program_of(plans[jid], models[jid])
        for bp in items:
            t = np.arange(0.0, plans[jid].cycle_s, 1.0).tolist()
            w0 = signal_delay(base, bp.group, t)
            w1 = np.minimum(
                w0,
                np.minimum(
                    signal_delay(bp.extended, bp.group, t), signal_delay(bp.early, bp.group, t)
                ),
            )
            rows.append(
                (f"{jid}/{bp.group}", float(w0.mean()), float(w1.mean()), bp.extend_s, bp.early_s)
            )
    return xr.Dataset(
        {
            "without": ("approach", [r[1] for r in rows], {"units": "s", "long_name": "wait"}),
            "with": ("approach", [r[2] for r in rows], {"units": "s", "long_name": "wait"}),
            "extend_s": ("approach", [r[3] for r in rows], {"units": "s"}),
            "early_s": ("approach", [r[4] for r in rows], {"units": "s"}),
        },
        coords={"approach": [r[0] for r in rows]},
    )


# ------------------------------------------------------------------------------------------------
# one corridor, in the DES and in SUMO
# ------------------------------------------------------------------------------------------------
def _bearing(graph: Any, e: tuple[Any, Any, int]) -> float:
    a, b = graph.nodes[e[0]], graph.nodes[e[1]]
    return float(np.degrees(np.arctan2(b["y"] - a["y"], b["x"] - a["x"])))


def _turn(h_in: float, h_out: float) -> float:
    return abs((h_out - h_in + 180.0) % 360.0 - 180.0)


def corridor_demand(
    tw: Twin,
    plans: Any,
    art: Arterial,
    *,
    hours: float = 1.0,
    scale: float = 1.0,
    rng: int = 2018,
) -> tuple[Any, list[Any], dict[str, list[Any]]]:
    """The sub-network of a corridor and its trips, with fixed routes.

    Each side approach of the corridor's junctions sends its planning flow (``plans.flows``,
    veh/h, times ``scale``) straight on (the exit whose bearing turns least); the street's
    approaches at the corridor's two ends send theirs along the whole corridor, through every
    junction of it in turn (shortest paths from one junction to the next, so that a parallel
    street that is shorter end to end does not take them off the corridor), to the exit at the
    other end. Departures are Poisson over ``hours``. The network is the
    union of the routes and of every approach the plans signal.

    Returns
    -------
    graph, trips, junction nodes
    """
    import networkx as nx

    from twin.scenarios.traffic import Trip

    drive = tw.drive
    gen = np.random.default_rng(rng)
    reg = tw.registry["junction"]
    # a junction's cluster can hold nodes off the drive graph (a signalised crossing on a footway)
    nodes_of = {
        j: [n for n in map(_as_node, str(reg.loc[j, "nodes"]).split()) if n in drive]
        for j in art.junctions
    }
    centre = {
        j: np.mean([(drive.nodes[n]["x"], drive.nodes[n]["y"]) for n in ns], axis=0)
        for j, ns in nodes_of.items()
    }
    street = art.name.rsplit(" (", 1)[0]

    def dist(n: Any, j: str) -> float:
        d = drive.nodes[n]
        return float(np.hypot(d["x"] - centre[j][0], d["y"] - centre[j][1]))

    def link(a: Any, b: Any) -> tuple[Any, Any, int]:
        return (a, b, min(drive[a][b], key=lambda k: drive[a][b][k]["length"]))

    def route_to(app: tuple[Any, Any, int], exits: list[tuple[Any, Any, int]]) -> Any:
        h = _bearing(drive, app)
        for ex in sorted(exits, key=lambda e: _turn(h, _bearing(drive, e))):
            try:
                path = nx.shortest_path(drive, app[1], ex[0], weight="length")
            except nx.NetworkXNoPath:
                continue
            return (app, *(link(a, b) for a, b in zip(path, path[1:], strict=False)), ex)
        return None

    def through(
        app: tuple[Any, Any, int], order: Sequence[str], exits: list[tuple[Any, Any, int]]
    ) -> Any:
        nodes: list[Any] = [app[1]]
        for j in order:
            if nodes[-1] in nodes_of[j]:
                continue
            dist_to, paths = nx.single_source_dijkstra(
                drive, nodes[-1], cutoff=5000.0, weight="length"
            )
            hits = [n for n in nodes_of[j] if n in dist_to]
            if not hits:
                return None
            nodes += paths[min(hits, key=lambda n: dist_to[n])][1:]
        h = _bearing(drive, app)
        for ex in sorted(exits, key=lambda e: _turn(h, _bearing(drive, e))):
            try:
                tail = nx.shortest_path(drive, nodes[-1], ex[0], weight="length")
            except nx.NetworkXNoPath:
                continue
            path = nodes + tail[1:]
            if len(set(path)) < len(path):  # a U-turn through a junction: not a through route
                continue
            return (app, *(link(a, b) for a, b in zip(path, path[1:], strict=False)), ex)
        return None

    def exits_of(j: str) -> list[tuple[Any, Any, int]]:
        mine = set(nodes_of[j])
        return [
            (a, b, k)
            for a in mine
            for _, b, k in drive.out_edges(a, keys=True)
            if b not in mine and drive.edges[a, b, k].get("drive", True) is not False
        ]

    routes: list[tuple[tuple[Any, Any, int], ...]] = []
    rates: list[float] = []
    last = len(art.junctions) - 1
    for i, j in enumerate(art.junctions):
        fr = plans.flows[plans.flows["junction"] == j]
        for r in fr.itertuples(index=False):
            app = (_as_node(r.u), _as_node(r.v), int(r.key))
            on_street = drive.edges[app].get("name") == street
            if not on_street:
                rt = route_to(app, [e for e in exits_of(j) if e[1] != app[0]])
                if rt is not None and len(rt) <= 4:
                    routes.append(rt)
                    rates.append(float(r.flow_pcu_h) * scale)
                continue
            if i not in (0, last):
                continue
            nxt, far = (
                (art.junctions[1], art.junctions[-1])
                if i == 0
                else (
                    art.junctions[-2],
                    art.junctions[0],
                )
            )
            if dist(app[0], nxt) < dist(app[1], nxt):  # leaves the corridor: not an entry
                continue
            before = art.junctions[-2] if i == 0 else art.junctions[1]
            outward = [
                e
                for e in exits_of(far)
                if drive.edges[e].get("name") == street and dist(e[1], before) > dist(e[0], before)
            ]
            order = art.junctions[1:-1] if i == 0 else art.junctions[-2:0:-1]
            rt = through(app, order, outward)
            if rt is not None:
                routes.append(rt)
                rates.append(float(r.flow_pcu_h) * scale)
    trips = []
    for i, (route, q) in enumerate(zip(routes, rates, strict=True)):
        n = int(gen.poisson(q * hours))
        for m, t in enumerate(np.sort(gen.uniform(0.0, 3600.0 * hours, n))):
            trips.append(Trip(f"r{i}.{m}", route[0][0], route[-1][1], float(round(t, 1)), route))
    sub = nx.MultiDiGraph(**drive.graph)
    edges = {e for route in routes for e in route}
    edges |= {a for j in art.junctions for ph in plans[j].phases for a in ph.approaches}
    for u, v, k in sorted(edges, key=repr):
        for n in (u, v):
            sub.add_node(n, **drive.nodes[n])
        sub.add_edge(u, v, key=k, **drive.edges[u, v, k])
    return sub, trips, {j: [n for n in nodes_of[j] if n in sub] for j in art.junctions}


def arterial_route(
    tw: Twin, plans: Mapping[str, SignalPlan], art: Arterial
) -> tuple[tuple[Any, Any, int], ...]:
    """The way along an arterial through each of its signals in turn.

    It enters the first signal by the signalised approach that heads most nearly towards the
    second, goes from each signal to the next by the shortest path, and leaves the last by the
    exit that turns least from the way it came; outbound, or inbound where the street is one
    way (part of Avenue de Villeneuve-Angoulème). No node is passed twice (no U-turn through a
    junction), and no other signal of the arterial lies between two consecutive ones. The
    street's name is not needed at the two ends: a corridor may end where its street does
    (Avenue de l'Europe at Place Robert Schuman), and an emergency vehicle sent along it still
    crosses every signal of it.

    Returns
    -------
    tuple of (u, v, key)
        Edges of the street graph (``tw.drive``).

    Raises
    ------
    ValueError
        If no way through every signal exists in the street graph, either way.
    """
    try:
        return _route_along(tw, plans, art, art.junctions)
    except ValueError as out:
        try:
            return _route_along(tw, plans, art, art.junctions[::-1])
        except ValueError:
            raise out from None


def _route_along(
    tw: Twin, plans: Mapping[str, SignalPlan], art: Arterial, order: Sequence[str]
) -> tuple[tuple[Any, Any, int], ...]:
    import networkx as nx

    drive = tw.drive
    reg = tw.registry["junction"]
    nodes_of = {
        j: [n for n in map(_as_node, str(reg.loc[j, "nodes"]).split()) if n in drive] for j in order
    }
    centre = {
        j: np.mean([(drive.nodes[n]["x"], drive.nodes[n]["y"]) for n in ns], axis=0)
        for j, ns in nodes_of.items()
    }
    first, second = order[0], order[1]
    dx, dy = centre[second] - centre[first]
    heading = float(np.degrees(np.arctan2(dy, dx)))
    entries = [a for a in plans[first].approaches if a in drive.edges]
    if not entries:
        msg = f"{art.name}: no signalised approach of {first} in the street graph"
        raise ValueError(msg)
    entry = min(entries, key=lambda a: _turn(heading, _bearing(drive, a)))
    nodes: list[Any] = [entry[0], entry[1]]
    for k, j in enumerate(order[1:], start=1):
        # to a signalised approach of the next signal, by neither a node already passed (no
        # U-turn back through a junction) nor another signal of the arterial
        others = {n for i in order if i not in (j, order[k - 1]) for n in nodes_of[i]}
        banned = (set(nodes[:-1]) | others) - {nodes[-1]}
        view = nx.restricted_view(drive, banned, [])
        dist_to, paths = nx.single_source_dijkstra(view, nodes[-1], cutoff=5000.0, weight="length")
        step = centre[j] - centre[order[k - 1]]
        towards = float(np.degrees(np.arctan2(step[1], step[0])))
        ways = [
            (dist_to[a[0]] + float(drive.edges[a]["length"]), a)
            for a in plans[j].approaches
            if _turn(towards, _bearing(drive, a)) < 90.0  # arriving from the signal before
            if a in drive.edges
            and a[0] in dist_to
            and a[0] not in nodes_of[j]
            and a[1] not in banned
        ]
        if not ways:
            msg = f"{art.name}: no way from {order[k - 1]} to {j} in the street graph"
            raise ValueError(msg)
        a = min(ways, key=lambda x: x[0])[1]
        nodes += [*paths[a[0]][1:], a[1]]
    last = set(nodes_of[order[-1]])
    arrive = (nodes[-2], nodes[-1])
    h = _bearing(drive, (*arrive, 0))
    exits = [
        (a, b, k)
        for a in [nodes[-1]]
        for _, b, k in drive.out_edges(a, keys=True)
        if b not in last and b not in nodes and drive.edges[a, b, k].get("drive", True) is not False
    ]
    if not exits:
        msg = f"{art.name}: no way out of {order[-1]} in the street graph"
        raise ValueError(msg)
    ex = min(exits, key=lambda e: _turn(h, _bearing(drive, e)))
    nodes.append(ex[1])

    def link(a: Any, b: Any) -> tuple[Any, Any, int]:
        return (a, b, min(drive[a][b], key=lambda k: drive[a][b][k]["length"]))

    return (entry, *(link(a, b) for a, b in zip(nodes[1:], nodes[2:], strict=False)))


def corridor_vs_sumo(
    tw: Twin,
    plan_sets: Mapping[str, Mapping[str, SignalPlan]],
    art: Arterial,
    *,
    flows_from: Any,
    out_dir: str | Any,
    scale: float = 1.0,
    rng: int = 2018,
) -> xr.Dataset:
    """Mean travel time on a corridor under each set of plans, in the DES and in SUMO (micro).

    Both simulators get the same sub-network, the same trips on the same fixed routes
    (:func:`corridor_demand`) and the same plans (the SUMO export of :func:`twin.sumo.write_sumo`
    carries them with their offsets).

    Returns
    -------
    xarray.Dataset
        Dims ``scenario``, ``simulator`` (``des``, ``sumo``): ``travel_time`` (s, mean over the
        trips that arrived), ``arrived`` (trips); attrs ``trips``.
    """
    import subprocess
    from pathlib import Path

    from twin.scenarios.traffic import TrafficScenario, run
    from twin.sumo import sumo_binary, write_sumo

    graph, trips, nodes = corridor_demand(tw, flows_from, art, scale=scale, rng=rng)
    names = list(plan_sets)
    tt = np.full((len(names), 2), np.nan)
    arrived = np.zeros((len(names), 2), dtype=int)
    for s, name in enumerate(names):
        plans = [plan_sets[name][j] for j in art.junctions]
        ds = run(
            TrafficScenario(graph, trips=tuple(trips), plans=tuple(plans), progress=False), rng=rng
        )
        t = ds["travel_time"].values
        tt[s, 0], arrived[s, 0] = float(np.nanmean(t)), int(np.isfinite(t).sum())
        out = Path(out_dir) / name.replace(" ", "_")
        paths = write_sumo(graph, out_dir=out, trips=trips, plans=plans, junctions=nodes)
        info = out / "tripinfo.xml"
        res = subprocess.run(
            [
                sumo_binary("sumo"),
                "-c",
                str(paths["config"]),
                "--no-step-log",
                "--no-warnings",
                "--seed",
                str(rng),
                "--tripinfo-output",
                str(info),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            msg = f"sumo failed on {paths['config']}: {res.stderr[-2000:]}"
            raise RuntimeError(msg)
        import xml.etree.ElementTree as ET

        durs = [
            float(el.get("duration", "nan")) for el in ET.parse(info).getroot().iter("tripinfo")
        ]
        tt[s, 1], arrived[s, 1] = float(np.mean(durs)), len(durs)
    return xr.Dataset(
        {
            "travel_time": (
                ("scenario", "simulator"),
                tt,
                {"units": "s", "long_name": "mean travel time of the trips that arrived"},
            ),
            "arrived": (("scenario", "simulator"), arrived, {"units": "1"}),
        },
        coords={"scenario": names, "simulator": ["des", "sumo"]},
        attrs={"trips": len(trips), "corridor": art.name},
    )


def _as_node(x: Any) -> Any:
    s = str(x)
    return int(s) if s.lstrip("-").isdigit() else x


# ------------------------------------------------------------------------------------------------
# emergency vehicles and buses run in the DES, the controller answering their calls
# ------------------------------------------------------------------------------------------------
def des_program(
    program: Any, plan: SignalPlan, model: JunctionModel, graph: Any, *, start_s: float
) -> Any:
    """A junction programme (:class:`twin.signals.safety.SignalProgram`) as the DES runs it.

    Each vehicle group's windows apply to every movement of its approaches (to each edge of
    ``graph`` that the approach leads into); a one-off programme (``horizon_s``) is a DES
    program whose cycle is its horizon, its time 0 at ``start_s`` (s since the run's ``t0``);
    a cyclic one keeps its cycle and offset.

    Returns
    -------
    twin.scenarios.traffic.SignalProgram
    """
    from twin.scenarios.traffic import SignalProgram as DesProgram

    cycle = float(program.horizon_s or program.cycle_s)
    offset = start_s % cycle if program.horizon_s else float(program.offset_s) % cycle
    by_group = {gp.group: gp.greens for gp in program.groups}
    moves = []
    for a in plan.approaches:
        g = model.group_of_edge(a)
        wins = tuple(
            (max(0.0, s), min(e, cycle)) for s, e in by_group.get(g, ()) if min(e, cycle) > s
        )
        for _, b, k in graph.out_edges(a[1], keys=True):
            moves.append((a, (a[1], b, k), wins))
    return DesProgram(plan.junction, cycle, offset, tuple(moves))


def _free_times(graph: Any, route: Sequence[Any]) -> np.ndarray:
    """Free-flow time (s) to the end of each edge of a route."""
    t = [
        float(graph.edges[e]["length"]) / (float(graph.edges[e]["speed_kph"]) / 3.6) for e in route
    ]
    return np.cumsum(t)


def _follow(
    sim: Any,
    graph: Any,
    vehicles: Mapping[str, tuple[float, tuple[Any, ...]]],
    calls: Mapping[str, Sequence[tuple[int, str]]],
    lead_s: float,
    answer: Any,
    step_s: float = 1.0,
    tick: Any = None,
) -> None:
    """Step ``sim`` and call ``answer(vehicle, junction, now)`` once per signal on its route.

    ``calls[vehicle]`` lists ``(route index of the approach, junction)``; the call goes when
    the vehicle's free-flow time to that stop line falls to ``lead_s`` or below (a check-in
    detector upstream of the stop line). ``tick(now, where)``, if given, runs after every step
    with ``where(vehicle)``: the route index of the edge the vehicle is on, or ``None``; it
    returns whether it still has work (the stepping goes on while it has).
    """
    ends = {v: _free_times(graph, r) for v, (_, r) in vehicles.items()}
    pos = {v: {e: i for i, e in enumerate(r)} for v, (_, r) in vehicles.items()}
    todo = {v: list(c) for v, c in calls.items()}
    last = max(d for d, _ in vehicles.values())

    def where(v: str) -> int | None:
        edge, _ = sim.locate(v)
        return None if edge is None else pos[v][tuple(edge)]

    t = 0.0
    busy = True
    while (any(todo.values()) or busy) and not sim.done:
        t += step_s
        sim.run_until(t)
        for v, pending in todo.items():
            if not pending:
                continue
            edge, entered = sim.locate(v)
            if edge is None:
                if t > vehicles[v][0] + 1.0 and t > last:
                    pending.clear()
                continue
            i = pos[v][tuple(edge)]
            start = ends[v][i - 1] if i else 0.0
            while pending and pending[0][0] < i:
                pending.pop(0)  # passed without a call (entered past the check-in)
            while pending and ends[v][pending[0][0]] - start - (t - entered) <= lead_s:
                answer(v, pending[0][1], t)
                pending.pop(0)
        busy = bool(tick(t, where)) if tick is not None else False


def _times(sim: Any, ids: Sequence[str]) -> tuple[list[float], float]:
    """Run to the end: the travel times of ``ids`` and the mean of the other trips'."""
    ds = sim.result()
    t = ds["travel_time"]
    mask = ~np.isin(ds["trip"].values, list(ids))
    return [float(t.sel(trip=v)) for v in ids], float(np.nanmean(t.values[mask]))


def des_emergency(
    tw: Twin,
    plans: Mapping[str, SignalPlan],
    models: Mapping[str, JunctionModel],
    art: Arterial,
    *,
    flows_from: Any,
    scale: float = 1.0,
    runs: int = 5,
    first_s: float = 300.0,
    spacing_s: float = 600.0,
    lead_s: float = 15.0,
    hold_s: float = 20.0,
    max_hold_s: float = 90.0,
    rng: int = 2018,
) -> xr.Dataset:
    """Emergency vehicles along a corridor in the DES, without and with preemption.

    The corridor's sub-network and traffic are :func:`corridor_demand`'s. ``runs`` emergency
    vehicles drive the arterial from end to end (:func:`arterial_route`, as a control room
    sends them), every ``spacing_s`` from ``first_s``; they queue like the
    others (no overtaking in the DES). With preemption, each signal on the way is called when the
    vehicle is ``lead_s`` of free-flow time from its stop line
    (:func:`optimize.signals.preemption`, holding ``hold_s``, then the recovery back to the plan
    with its offset), and not before it has crossed the signal before (where signals are
    close, the check-in of the next one lies in the queue of the one before); while the
    vehicle has not crossed the stop line (held in the queue that the green is clearing), the
    hold is lengthened by 10 s at a time, up to ``max_hold_s`` (a
    check-out detector: the same sequence from the same call, validated again). The
    programmes are switched in the DES through
    :meth:`~twin.scenarios.traffic.TrafficSimulation.set_program` and back through
    :meth:`~twin.scenarios.traffic.TrafficSimulation.set_plan`. A call that finds the junction
    still in a preemption, or for which no safe sequence exists, is not served (``refused``).

    Returns
    -------
    xarray.Dataset
        Dims ``scenario`` (``without``, ``preemption``) and ``vehicle``: ``travel_time`` (s);
        per scenario ``others_travel_time`` (s, mean of the other trips); ``free_flow`` (s, the
        route at free speed); attrs ``route_signals``, ``refused``.
    """
    import dataclasses as dc

    from twin.scenarios.traffic import TrafficScenario, TrafficSimulation, Trip

    if runs < 1:
        msg = f"runs: {runs!r} must be at least 1"
        raise ValueError(msg)
    graph, trips, _ = corridor_demand(tw, flows_from, art, scale=scale, rng=rng)
    route = arterial_route(tw, plans, art)
    for e in route:  # the sub-network holds the corridor's traffic; add the way in and out
        for n in e[:2]:
            if n not in graph:
                graph.add_node(n, **tw.drive.nodes[n])
        if not graph.has_edge(*e):
            graph.add_edge(*e, **tw.drive.edges[e])
    app_of = {a: j for j in art.junctions for a in plans[j].approaches}
    calls = [(i, app_of[e]) for i, e in enumerate(route) if e in app_of]
    calls_at = {j: i for i, j in calls}
    before = {j: calls[k - 1][1] for k, (_, j) in enumerate(calls) if k}
    index_of = {e: i for i, e in enumerate(route)}
    ids = [f"emergency.{m}" for m in range(runs)]
    evs = {v: (first_s + m * spacing_s, route) for m, v in enumerate(ids)}
    extra = tuple(Trip(v, route[0][0], route[-1][1], d, route) for v, (d, _) in evs.items())
    sc = TrafficScenario(
        graph, trips=(*trips, *extra), plans=tuple(plans[j] for j in art.junctions), progress=False
    )
    tt = np.full((2, runs), np.nan)
    others = np.full(2, np.nan)
    refused = 0
    for s in range(2):
        sim = TrafficSimulation(dc.replace(sc), rng=rng)
        if s == 1:
            active: dict[str, dict[str, Any]] = {}

            def serve(j: str, call: float, hold: float, now: float, sim: Any = sim) -> Any:
                plan, model = plans[j], models[j]
                group = model.group_of_edge(route[calls_at[j]])
                prog = preemption(plan, model, group, call_s=call, hold_s=hold)
                start = call - (call - plan.offset_s) % plan.cycle_s
                sim.set_program(des_program(prog, plan, model, graph, start_s=start), at_s=now)
                return start + float(prog.horizon_s or prog.cycle_s)

            deferred: list[tuple[str, str]] = []

            def crossed(v: str, j: str, sim: Any = sim) -> bool:
                """Whether ``v`` is past ``j``'s stop line (or out of the network)."""
                edge, _ = sim.locate(v)
                return edge is None or index_of[tuple(edge)] > calls_at[j]

            def answer(v: str, j: str, now: float, deferred: Any = deferred) -> None:
                # the next signal is called once the vehicle has crossed the one before it: a
                # vehicle held in a queue is no nearer the next stop line, and a call made from
                # there would run out (and the junction recover) before it arrives
                if j in before and not crossed(v, before[j]):
                    deferred.append((v, j))
                    return
                call(v, j, now)

            def call(v: str, j: str, now: float, active: Any = active) -> None:
                nonlocal refused
                if j in active:  # still serving an earlier call
                    refused += 1
                    return
                try:
                    resume = serve(j, now, hold_s, now)
                except ValueError:
                    refused += 1
                    return
                active[j] = {"v": v, "call": now, "hold": hold_s, "resume": resume}

            def tick(
                now: float,
                where: Any,
                active: Any = active,
                sim: Any = sim,
                step: float = 1.0,
                deferred: Any = deferred,
            ) -> bool:
                for v, j in list(deferred):
                    if crossed(v, before[j]):
                        deferred.remove((v, j))
                        call(v, j, now)
                for j in list(active):
                    a = active[j]
                    i = where(a["v"])
                    waiting = i is not None and i <= calls_at[j]
                    # the vehicle has not crossed the stop line as the hold ends: hold longer
                    # (the same sequence from the same call, so identical until now)
                    if waiting and now >= a["call"] + a["hold"] - 3.0 and a["hold"] < max_hold_s:
                        try:
                            a["resume"] = serve(j, a["call"], a["hold"] + 10.0, now)
                            a["hold"] += 10.0
                        except ValueError:
                            a["hold"] = max_hold_s
                    if a["resume"] <= now + step:
                        sim.set_plan(plans[j], at_s=max(a["resume"], now))
                        del active[j]
                return bool(active) or bool(deferred)

            _follow(sim, graph, evs, {v: calls for v in ids}, lead_s, answer, tick=tick)
        tt[s], others[s] = _times(sim, ids)
    return xr.Dataset(
        {
            "travel_time": (
                ("scenario", "vehicle"),
                tt,
                {"units": "s", "long_name": "emergency vehicle travel time along the corridor"},
            ),
            "others_travel_time": (
                "scenario",
                others,
                {"units": "s", "long_name": "mean travel time of the other trips"},
            ),
            "free_flow": ((), float(_free_times(graph, route)[-1]), {"units": "s"}),
        },
        coords={"scenario": ["without", "preemption"], "vehicle": ids},
        attrs={"corridor": art.name, "route_signals": len(calls), "refused": refused},
    )


def _spliced(base: Any, chosen: Any, at_s: float, cycles: int) -> Any:
    """The one-off programme of a priority call, its times from a cycle start.

    ``base`` up to ``at_s``, ``chosen`` from there to the end of cycle ``cycles``, then
    ``base`` for one more cycle.
    """
    from twin.signals.safety import GroupProgram
    from twin.signals.safety import SignalProgram as GroupedProgram

    cyc = float(base.cycle_s)
    horizon = (cycles + 1) * cyc
    segments = ((base, 0.0, at_s), (chosen, at_s, cycles * cyc), (base, cycles * cyc, horizon))
    groups = []
    for gp in base.groups:
        wins: list[tuple[float, float]] = []
        for prog, lo, hi in segments:
            own = prog.group(gp.group)
            for k in range(cycles + 1):
                for s, e in own.greens if own is not None else ():
                    a, b = max(s + k * cyc, lo), min(e + k * cyc, hi)
                    if b > a:
                        wins.append((a, b))
        merged: list[tuple[float, float]] = []
        for s, e in sorted(wins):
            if merged and s <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        groups.append(GroupProgram(gp.group, tuple(merged), gp.amber_s))
    return GroupedProgram(base.junction, horizon, base.offset_s, tuple(groups), horizon_s=horizon)


def _skips(base: Any, chosen: Any, prog: Any, cycles: int) -> bool:
    """Whether ``prog`` cuts a stage short of both the plan and the priority programme.

    That is: gives a group, in one of its first ``cycles`` cycles, less green than both. A
    priority call may lengthen or advance the bus's stage within what the priority programme
    allows the others, never cut a stage short of it: switching in mid-stage could otherwise
    end a stage after its minimum green, or skip it, and cost its approaches a cycle.
    """
    cyc = float(base.cycle_s)

    def green(p: Any, g: str, lo: float, hi: float, periodic: bool) -> float:
        own = p.group(g)
        if own is None:
            return 0.0
        shifts = (lo,) if periodic else (0.0,)
        return float(
            sum(max(0.0, min(e + d, hi) - max(s + d, lo)) for d in shifts for s, e in own.greens)
        )

    for gp in base.groups:
        need = min(green(base, gp.group, 0, cyc, True), green(chosen, gp.group, 0, cyc, True))
        for k in range(cycles):
            if green(prog, gp.group, k * cyc, (k + 1) * cyc, False) < need - 0.5:
                return True
    return False


_GOLDEN = (5**0.5 - 1) / 2


def bus_trips(
    graph: Any,
    routes: Sequence[Any],
    priorities: Mapping[str, Sequence[BusPriority]],
    models: Mapping[str, JunctionModel],
    *,
    window_s: tuple[float, float],
    headway_s: float,
    reach: int = 5,
) -> list[Any]:
    """Buses through every bus approach that has priority, every ``headway_s`` in ``window_s``.

    The lines' timetables are staggered (line ``i`` starts ``i`` times the golden ratio's
    fraction of a headway later, modulo the headway), so that buses on conflicting approaches do
    not all arrive together. Each runs along its route (a :class:`twin.signals.buses.BusRoute`
    holding the approach) from ``reach`` edges before the approach to ``reach`` edges after
    it; where the route's edges do not join, the shortest path joins them.
    """
    import networkx as nx

    from twin.scenarios.traffic import Trip

    def link(a: Any, b: Any) -> tuple[Any, Any, int]:
        return (a, b, min(graph[a][b], key=lambda k: graph[a][b][k]["length"]))

    out: list[Any] = []
    n_lines = 0
    for jid in sorted(priorities):
        for bp in priorities[jid]:
            edge = models[jid].group(bp.group).edge
            if edge is None:
                continue
            a: tuple[Any, Any, int] = (edge[0], edge[1], int(edge[2]))
            on = [r for r in routes if a in r.edges]
            if not on:
                continue
            es = list(on[0].edges)
            i = es.index(a)
            origin, dest = es[max(0, i - reach)][0], es[min(len(es) - 1, i + reach)][1]
            try:
                p1 = nx.shortest_path(graph, origin, a[0], weight="length")
                p2 = nx.shortest_path(graph, a[1], dest, weight="length")
            except nx.NetworkXNoPath:
                continue
            route: tuple[tuple[Any, Any, int], ...] = (
                *(link(x, y) for x, y in zip(p1, p1[1:], strict=False)),
                a,
                *(link(x, y) for x, y in zip(p2, p2[1:], strict=False)),
            )
            tag = f"bus.{jid}.{bp.group}"
            lag = (_GOLDEN * n_lines) % 1.0 * headway_s
            n_lines += 1
            for m, t in enumerate(np.arange(window_s[0] + lag, window_s[1], headway_s)):
                out.append(Trip(f"{tag}.{m}", route[0][0], route[-1][1], float(t), route))
    return out


def des_buses(
    scenario: Any,
    plans: Mapping[str, SignalPlan],
    models: Mapping[str, JunctionModel],
    priorities: Mapping[str, Sequence[BusPriority]],
    buses: Sequence[Any],
    *,
    lead_s: float = 20.0,
    rng: int = 2018,
) -> xr.Dataset:
    """Buses in the DES among the scenario's traffic, without and with bus priority.

    With priority, a bus checks in when it is ``lead_s`` of free-flow time from the stop line
    of a junction where its approach has priority; the controller predicts its arrival and,
    if the green extension or the early green (:func:`optimize.signals.bus_priority`) serves it
    sooner than the plan, runs that programme from the call to the end of the arrival's
    cycle, then the plan again (:meth:`~twin.scenarios.traffic.TrafficSimulation.set_program`,
    :meth:`~twin.scenarios.traffic.TrafficSimulation.set_plan`). The switch is validated as a
    one-off programme (:func:`twin.signals.safety.validate`); a call whose switch is unsafe,
    would cut a stage short of what both programmes give it, or finds the junction already
    serving a call, gets nothing (``refused``). Buses queue with the other traffic (no bus
    lanes in the DES).

    Returns
    -------
    xarray.Dataset
        Dims ``scenario`` (``without``, ``priority``) and ``bus``: ``travel_time`` and
        ``delay`` (s, over the free-flow time of its route); per scenario
        ``others_travel_time``; attrs ``served``, ``refused``.
    """
    import dataclasses as dc

    from twin._errors import UnsafePlanError
    from twin.scenarios.traffic import TrafficSimulation
    from twin.signals.safety import validate

    graph = scenario.graph
    sc = dc.replace(scenario, trips=(*scenario.trips, *buses))
    by_edge = {
        tuple(models[j].group(bp.group).edge or ()): (j, bp)
        for j, items in priorities.items()
        for bp in items
    }
    ids = [b.id for b in buses]
    calls = {
        b.id: [(i, f"{i}") for i, e in enumerate(b.route) if tuple(e) in by_edge] for b in buses
    }
    route_of = {b.id: b.route for b in buses}
    free = np.array([float(_free_times(graph, b.route)[-1]) for b in buses])
    tt = np.full((2, len(buses)), np.nan)
    others = np.full(2, np.nan)
    served = refused = 0
    for s in range(2):
        sim = TrafficSimulation(sc, rng=rng)
        if s == 1:
            busy: dict[str, float] = {}

            def answer(v: str, k: str, now: float, sim: Any = sim, busy: Any = busy) -> None:
                nonlocal served, refused
                edge = tuple(route_of[v][int(k)])
                j, bp = by_edge[edge]
                plan = plans[j]
                cyc = plan.cycle_s
                ta = now + lead_s
                tc = (ta - plan.offset_s) % cyc
                w0 = float(signal_delay(program_of(plan, models[j]), bp.group, [tc])[0])
                options = [
                    (float(signal_delay(p, bp.group, [tc])[0]), p) for p in (bp.extended, bp.early)
                ]
                wait, chosen = min(options, key=lambda x: x[0])
                if wait >= w0:
                    return  # the plan serves it as soon
                if busy.get(j, -np.inf) > now:
                    refused += 1
                    return
                start = now - (now - plan.offset_s) % cyc
                cycles = int((ta - start) // cyc) + 1
                base = program_of(plan, models[j])
                prog = _spliced(base, chosen, now - start, cycles)
                try:
                    validate(prog, models[j])
                except UnsafePlanError:
                    refused += 1
                    return
                if _skips(base, chosen, prog, cycles):
                    refused += 1
                    return
                horizon = float(prog.horizon_s or prog.cycle_s)
                sim.set_program(des_program(prog, plan, models[j], graph, start_s=start), at_s=now)
                sim.set_plan(plan, at_s=start + horizon)
                busy[j] = start + horizon
                served += 1

            vehicles = {b.id: (b.depart_s, tuple(b.route)) for b in buses}
            _follow(sim, graph, vehicles, calls, lead_s, answer)
        tt[s], others[s] = _times(sim, ids)
    return xr.Dataset(
        {
            "travel_time": (("scenario", "bus"), tt, {"units": "s", "long_name": "bus trip"}),
            "delay": (
                ("scenario", "bus"),
                tt - free[None, :],
                {"units": "s", "long_name": "bus delay over its free-flow time"},
            ),
            "others_travel_time": (
                "scenario",
                others,
                {"units": "s", "long_name": "mean travel time of the other trips"},
            ),
        },
        coords={"scenario": ["without", "priority"], "bus": ids},
        attrs={"served": served, "refused": refused},
    )
