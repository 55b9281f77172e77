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
* :func:`des_buses`: buses (:func:`bus_trips`) among a city's DES traffic; with priority, a
  check-in loop upstream of the stop line and a check-out at it: an early green at a red
  check-in, a green held (extended) while the bus has not checked out
  (:func:`optimize.signals.bus_call`), each switch validated, the plan resumed with its offset.

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
    from twin.scenarios.gravity import DemandModel

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
    model: DemandModel | None = None,
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
    model : the demand model whose trips run (default the twin's,
        :func:`twin.scenarios.demand.build_demand`; a calibrated one from
        :func:`twin.scenarios.calibration.load_calibrated_model`)

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
        sc = scenario_from_twin(
            tw, day=day, hours=hours, rng=rng, plans=plans, model=model, progress=False
        )
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

    def exits_from(a: Any) -> list[tuple[Any, Any, int]]:
        return [
            (a, b, k)
            for _, b, k in drive.out_edges(a, keys=True)
            if b not in last
            and b not in nodes
            and drive.edges[a, b, k].get("drive", True) is not False
        ]

    exits = exits_from(nodes[-1])
    through: list[Any] = []
    if not exits:
        # a junction of several nodes: out through its other nodes, the straightest way on
        inside = drive.subgraph(last | {nodes[-1]})
        ways = nx.single_source_dijkstra_path(inside, nodes[-1], weight="length")
        found = [
            (_turn(h, _bearing(drive, e)), len(path), path, e)
            for path in ways.values()
            if len(path) > 1 and not set(path[1:]) & set(nodes)
            for e in exits_from(path[-1])
        ]
        if found:
            _, _, path, e = min(found, key=lambda f: (f[0], f[1]))
            through, exits = path[1:], [e]
    if not exits:
        msg = f"{art.name}: no way out of {order[-1]} in the street graph"
        raise ValueError(msg)
    ex = min(exits, key=lambda e: _turn(h, _bearing(drive, e)))
    nodes += [*through, ex[1]]

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
    lead_m: float | None = None,
) -> None:
    """Step ``sim`` and call ``answer(vehicle, junction, now)`` once per signal on its route.

    ``calls[vehicle]`` lists ``(route index of the approach, junction)``; the call goes when
    the vehicle's free-flow time to that stop line falls to ``lead_s`` or below (a check-in
    detector upstream of the stop line), or, if ``lead_m`` is given, when its distance to the
    stop line falls to ``lead_m`` (m; a check-in loop that far upstream; the position on an
    edge is where free-flow driving since entering it would put the vehicle, at most the stop
    line). ``tick(now, where)``, if given, runs after every step with ``where(vehicle)``: the
    route index of the edge the vehicle is on, or ``None``; it returns whether it still has
    work (the stepping goes on while it has).
    """
    if lead_m is not None:  # the same test in distance: lead_m over 1 m/s
        ends = {
            v: np.cumsum([float(graph.edges[e]["length"]) for e in r])
            for v, (_, r) in vehicles.items()
        }
        speeds = {
            v: [float(graph.edges[e]["speed_kph"]) / 3.6 for e in r]
            for v, (_, r) in vehicles.items()
        }
        lead = float(lead_m)
    else:
        ends = {v: _free_times(graph, r) for v, (_, r) in vehicles.items()}
        speeds = {v: [1.0] * len(r) for v, (_, r) in vehicles.items()}
        lead = lead_s
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
            done = (t - entered) * speeds[v][i]
            if lead_m is not None:
                done = min(done, ends[v][i] - start)  # held at the stop line, not past it
            while pending and ends[v][pending[0][0]] - start - done <= lead:
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
    checkin_m: float = 150.0,
    max_extension_s: float = 15.0,
    max_early_s: float | None = None,
    rng: int = 2018,
) -> xr.Dataset:
    """Buses in the DES among the scenario's traffic, without and with bus priority.

    With priority, the controller works as a check-in / check-out bus priority does (SCOOT and
    MOVA bus priority, the French "priorité bus"): no arrival is predicted. A bus checks in
    ``checkin_m`` upstream of the stop line of a junction where its approach has priority
    (default 150 m: about 11 s at 50 km/h, 18 s at 30 km/h, the span of the longest
    extension) and checks out as it crosses the stop line (it leaves the approach's edge).

    * Red at check-in: an early green at once (:func:`optimize.signals.bus_call`), the
      conflicting stages cut to their minimum greens (at most ``max_early_s`` in all).
    * Green (also after an early green): while the bus has not checked out as the green is
      about to end, it is extended 2 s at a time, up to ``max_extension_s``, the following
      stages giving the time back down to their minimums; the check-out cancels (no more
      extension), the plan resumes with its offset (compensation) as the programme hands back.

    Each programme is one-off, validated over its horizon
    (:func:`twin.signals.safety.validate`), switched in with
    :meth:`~twin.scenarios.traffic.TrafficSimulation.set_program` and ended with
    :meth:`~twin.scenarios.traffic.TrafficSimulation.set_plan` where it hands back. A call that
    finds the junction serving a bus on another approach (or on the same one after its green),
    or that no safe programme answers, gets nothing (``refused``); a bus checking in on the
    approach being served joins the call (the extension waits for it too). Buses queue with
    the other traffic (no bus lanes in the DES).

    Returns
    -------
    xarray.Dataset
        Dims ``scenario`` (``without``, ``priority``) and ``bus``: ``travel_time`` and
        ``delay`` (s, over the free-flow time of its route); per scenario
        ``others_travel_time`` (s, of the finished ones) and ``others_unfinished``; attrs
        ``served`` (calls answered with a changed programme), ``early``, ``extended`` (of
        those), ``refused``, ``checkin_m``, ``max_extension_s``.
    """
    import dataclasses as dc

    from optimize.signals import bus_call
    from twin._errors import InputValidationError
    from twin.scenarios.traffic import TrafficSimulation

    if checkin_m <= 0 or max_extension_s < 0:
        msg = f"checkin_m {checkin_m!r} must be > 0 and max_extension_s {max_extension_s!r} >= 0"
        raise ValueError(msg)
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
    stuck = np.zeros(2, dtype=int)
    served = refused = early = extended = 0
    step_ext = 2.0
    for s in range(2):
        sim = TrafficSimulation(sc, rng=rng)
        if s == 1:
            active: dict[str, dict[str, Any]] = {}

            def switch(j: str, a: dict[str, Any], now: float, sim: Any = sim) -> None:
                prog = des_program(a["answer"].program, plans[j], models[j], graph, start_s=a["t0"])
                sim.set_program(prog, at_s=now)

            def answer(v: str, k: str, now: float, active: Any = active) -> None:
                nonlocal served, refused, early
                idx = int(k)
                j, bp = by_edge[tuple(route_of[v][idx])]
                a = active.get(j)
                if a is not None:
                    if a["group"] == bp.group and now < a["t0"] + a["answer"].green_end_s:
                        a["buses"][v] = idx
                    else:
                        refused += 1
                    return
                try:
                    ans = bus_call(
                        plans[j], models[j], bp.group, call_s=now, max_early_s=max_early_s
                    )
                except InputValidationError:
                    refused += 1
                    return
                a = {
                    "group": bp.group,
                    "call": now,
                    "t0": ans.cycle_start_s,
                    "answer": ans,
                    "asked": 0.0,
                    "buses": {v: idx},
                }
                active[j] = a
                if ans.changed:
                    switch(j, a, now)
                    served += 1
                    early += 1

            def tick(now: float, where: Any, active: Any = active, sim: Any = sim) -> bool:
                nonlocal served, extended
                for j in list(active):
                    a = active[j]
                    ans = a["answer"]
                    out = all((i := where(v)) is None or i > k for v, k in a["buses"].items())
                    end = a["t0"] + ans.green_end_s
                    if not out and end - 1.0 - 1e-9 <= now < end and a["asked"] < max_extension_s:
                        # still before the stop line as its green ends: extend
                        ask = min(a["asked"] + step_ext, max_extension_s)
                        try:
                            new = bus_call(
                                plans[j],
                                models[j],
                                a["group"],
                                call_s=a["call"],
                                extension_s=ask,
                                max_early_s=max_early_s,
                            )
                        except InputValidationError:
                            new = None
                        if new is not None and new.extension_s > ans.extension_s + 1e-9:
                            if not ans.changed:
                                served += 1
                            if ans.extension_s == 0:
                                extended += 1
                            a["answer"], a["asked"] = new, ask
                            switch(j, a, now)
                        else:
                            a["asked"] = max_extension_s  # the others have nothing more to give
                        ans = a["answer"]
                    if ans.changed:
                        back = a["t0"] + ans.handback_s
                        if back <= now + 1.0:
                            sim.set_plan(plans[j], at_s=max(back, now))
                            del active[j]
                    elif out or now >= a["t0"] + ans.green_end_s:
                        del active[j]  # checked out, or its green is over: nothing changed
                return bool(active)

            vehicles = {b.id: (b.depart_s, tuple(b.route)) for b in buses}
            _follow(sim, graph, vehicles, calls, 0.0, answer, tick=tick, lead_m=checkin_m)
        res = sim.result()
        t_all = res["travel_time"]
        mask = ~np.isin(res["trip"].values, ids)
        tt[s] = [float(t_all.sel(trip=v)) for v in ids]
        others[s] = float(np.nanmean(t_all.values[mask]))
        stuck[s] = int(np.isnan(t_all.values[mask]).sum())
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
            "others_unfinished": (
                "scenario",
                stuck,
                {"units": "1", "long_name": "other trips not finished by the end of the run"},
            ),
        },
        coords={"scenario": ["without", "priority"], "bus": ids},
        attrs={
            "served": served,
            "early": early,
            "extended": extended,
            "refused": refused,
            "checkin_m": float(checkin_m),
            "max_extension_s": float(max_extension_s),
        },
    )
