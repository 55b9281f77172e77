"""Evaluation of signal plans: DES delay per junction, stops, bands, emergency and bus waits."""

from __future__ import annotations

import numpy as np
import pytest

from optimize.coordination import coordinated_plans, junction_flows
from optimize.evaluation import (
    achieved_band,
    bus_waits,
    des_comparison,
    emergency_waits,
    stop_rate,
    uniform_delay,
)
from optimize.maxband import arterial_stage
from optimize.signals import bus_priorities
from twin.scenarios.network import REFERENCE_WEEKDAY, signal_plans
from twin.signals.buses import bus_groups, bus_routes
from twin.signals.junction import approaches_of, build_junction, crossroads_graph
from twin.signals.plans import webster


def test_stop_rate_by_hand():
    g = crossroads_graph()
    m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
    flows = {"a:1": 600.0, "a:3": 500.0, "a:2": 300.0, "a:4": 200.0}
    p = webster(m, flows)
    # Akçelik: h = 0.9 (1 - g/C) / (1 - y), y the stage's critical ratio (1 lane, 1,800 pcu/h)
    h = []
    for k, ph in enumerate(p.phases):
        y = max(flows[m.group_of_edge(a)] for a in ph.approaches) / 1800.0
        h.append((0.9 * (1 - ph.green_s / p.cycle_s) / (1 - y), k))
    q = [1100.0, 500.0]
    expected = (q[0] * h[0][0] + q[1] * h[1][0]) / sum(q)
    assert stop_rate(p, m, flows) == pytest.approx(expected, rel=1e-9)
    # Webster's uniform delay C (1 - g/C)^2 / (2 (1 - y)), flow-weighted the same way
    d = []
    for ph in p.phases:
        lam = ph.green_s / p.cycle_s
        y = max(flows[m.group_of_edge(a)] for a in ph.approaches) / 1800.0
        d.append(p.cycle_s * (1 - lam) ** 2 / (2 * (1 - y)))
    assert uniform_delay(p, m, flows) == pytest.approx((q[0] * d[0] + q[1] * d[1]) / sum(q))


def test_splits_of_a_junction_without_traffic_share_the_spare_green():
    """No flow on any stage (a junction the equilibrium leaves empty at the hour): the reserve
    capacity is unbounded, and the splits share the green evenly instead of failing."""
    import math

    from optimize.signals import optimise_splits

    g = crossroads_graph()
    m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
    none = {"a:1": 0.0, "a:2": 0.0, "a:3": 0.0, "a:4": 0.0}
    plan, sol = optimise_splits(m, none, cycle_s=60.0, objective="reserve")
    assert sol.attrs["status"] == "Optimal"
    assert math.isinf(sol.attrs["reserve_capacity"])
    greens = [ph.green_s for ph in plan.phases]
    assert max(greens) - min(greens) < 1e-6
    # with flow on one stage only, that stage takes the spare green beyond the other's minimum
    one = {**none, "a:1": 600.0}
    plan, sol = optimise_splits(m, one, cycle_s=60.0, objective="reserve")
    assert np.isfinite(sol.attrs["reserve_capacity"])
    assert sol["green"].values[0] > sol["green"].values[1] == sol["minimum"].values[1]


@pytest.fixture(scope="module")
def montpellier_coordinated(montpellier):  # type: ignore[no-untyped-def]
    plans = signal_plans(montpellier, day=REFERENCE_WEEKDAY, hour=8)
    return plans, coordinated_plans(montpellier, plans)


def test_webster_plans_below_the_longest_cycle_leave_no_stage_saturated(montpellier_coordinated):
    """A stage held at its minimum green (the walk across a street of three lanes each way) is
    lost time for the others: Webster's cycle grows for them instead of leaving a busy street
    what the crossing does not take (Avenue de Toulouse, junction:137: 8.7 s of 40, x = 1.84,
    and 37 other plans of Montpellier's morning above x = 0.95, below the 120 s cycle)."""
    from twin.signals.plans import stage_ratios

    plans, _ = montpellier_coordinated
    worst = {}
    for j, p in plans.items():
        m = plans.models[j]
        flows, lanes = junction_flows(plans, j)
        stages = [[m.group_of_edge(a) for a in ph.approaches] for ph in p.phases]
        ys = stage_ratios(m, flows, stages=stages, lanes=lanes)
        if p.cycle_s < 120.0 - 1e-6:
            worst[j] = max(y * p.cycle_s / ph.green_s for y, ph in zip(ys, p.phases, strict=True))
    assert len(worst) > 200
    assert max(worst.values()) <= 0.95, sorted(worst.items(), key=lambda kv: -kv[1])[:5]


def test_replayed_band_matches_maxband(montpellier, montpellier_coordinated):
    plans, co = montpellier_coordinated
    assert len(co.bands) >= 10
    gains = []
    for name, band in co.bands.items():
        art = co.arterials[name]
        street = name.rsplit(" (", 1)[0]
        ours = [co.plans[j] for j in art.junctions]
        stages = [arterial_stage(montpellier, p, street) for p in ours]
        out, inb = achieved_band(
            ours, stages, art, band["speed_out"].values, band["speed_in"].values
        )
        # the plans, replayed second by second, leave at least the band MAXBAND promised
        assert out >= band.attrs["band_out_s"] - 1.0, name
        assert inb >= band.attrs["band_in_s"] - 1.0, name
        base = [plans[j] for j in art.junctions]
        b0 = achieved_band(
            base,
            [arterial_stage(montpellier, p, street) for p in base],
            art,
            band["speed_out"].values,
            band["speed_in"].values,
        )
        gains.append(out + inb - sum(b0))
    assert np.mean(gains) > 5.0


def test_emergency_preemption_cuts_the_wait(montpellier_coordinated):
    plans, co = montpellier_coordinated
    name = max(co.bands, key=lambda n: len(co.arterials[n].junctions))
    js = co.arterials[name].junctions
    models = [plans.models[j] for j in js]
    street = name.rsplit(" (", 1)[0]
    groups = [
        next((g for g in m.vehicle_groups if m.group(g).name == street), m.vehicle_groups[0])
        for m in models
    ]
    without, with_, refused = emergency_waits([co.plans[j] for j in js], models, groups)
    assert len(without) == len(js)
    assert np.all(with_ <= without + 1e-9)
    assert with_.sum() < 0.5 * without.sum()
    # every call finds a safe sequence (one at junction:122 found none: an amber cut short)
    assert refused == 0


def test_bus_priority_cuts_bus_waits(bondy):
    plans = signal_plans(bondy, day=REFERENCE_WEEKDAY, hour=8)
    prio = bus_priorities(plans, plans.models, bus_groups(bus_routes(bondy), plans.models))
    ds = bus_waits(plans, plans.models, prio)
    assert ds.sizes["approach"] >= 4
    assert (ds["with"] <= ds["without"] + 1e-9).all()
    assert float(ds["with"].mean()) < float(ds["without"].mean())


def test_des_comparison_same_plans_same_result(bondy):
    plans = signal_plans(bondy, day=REFERENCE_WEEKDAY, hour=8)
    flows = {j: junction_flows(plans, j) for j in plans}
    ds = des_comparison(
        bondy,
        {"a": dict(plans), "b": dict(plans)},
        models=plans.models,
        flows=flows,
        day=REFERENCE_WEEKDAY,
    )
    assert list(ds["junction"].values) == sorted(plans)
    assert np.isfinite(ds["delay"].values).all() and (ds["volume"].values > 0).all()
    np.testing.assert_array_equal(ds["delay"].sel(scenario="a"), ds["delay"].sel(scenario="b"))
    assert ds["delay"].attrs["units"] == "s"
    assert 0 < float(ds["mean_stops"].sel(scenario="a")) <= 1


@pytest.mark.slow
def test_corridor_delay_change_agrees_with_sumo(montpellier, montpellier_coordinated, tmp_path):
    """Coordinating the whole of Avenue de Toulouse at its longest cycle: the DES's change of
    travel time has SUMO's sign and a size within 30% of SUMO's, at half the planning flows
    (both simulators undersaturated). benchmarks/signals.py --corridor-only prints the change
    per demand seed and on the mean of four, for the default coordination too (-15.9 s against
    SUMO's -14.3 at half flows, -11.6 against -13.1 at full flows)."""
    from optimize.evaluation import corridor_vs_sumo
    from optimize.maxband import corridors

    plans, _ = montpellier_coordinated
    whole = coordinated_plans(
        montpellier, plans, min_coupling=0.0, double_cycling=False, common_cycle="longest"
    )
    art = next(a for a in corridors(montpellier, plans) if a.name.startswith("Avenue de Toulouse"))
    ds = corridor_vs_sumo(
        montpellier,
        {"webster": dict(plans), "ours": whole.plans},
        art,
        flows_from=plans,
        out_dir=tmp_path,
        scale=0.5,
    )
    assert (ds["arrived"] == ds.attrs["trips"]).all()
    change = ds["travel_time"].sel(scenario="ours") - ds["travel_time"].sel(scenario="webster")
    des, sumo = float(change.sel(simulator="des")), float(change.sel(simulator="sumo"))
    assert np.sign(des) == np.sign(sumo) != 0
    assert abs(des - sumo) <= 0.3 * abs(sumo)


def test_arterial_route_crosses_every_signal_in_order(montpellier, montpellier_coordinated):
    """The way a control room sends an emergency vehicle: along each coordinated run, through
    a signalised approach of every junction in turn (inbound where the street is one way), even
    where the street ends at the run's last signal (Avenue de l'Europe at Place Robert
    Schuman)."""
    from optimize.evaluation import arterial_route

    _, co = montpellier_coordinated
    longest = max(co.bands, key=lambda n: len(co.arterials[n].junctions))
    europe = next(n for n in co.arterials if n.startswith("Avenue de l'Europe"))
    for name in (longest, europe):
        art = co.arterials[name]
        route = arterial_route(montpellier, co.plans, art)
        app_of = {a: j for j in art.junctions for a in co.plans[j].approaches}
        passed = [app_of[e] for e in route if e in app_of]
        assert passed in (list(art.junctions), list(art.junctions[::-1])), name
        assert all(a[1] == b[0] for a, b in zip(route, route[1:], strict=False)), name


def test_emergency_vehicles_in_the_des_gain_from_preemption(montpellier, montpellier_coordinated):
    """Emergency vehicles driven through the DES along the longest coordinated run, among the
    corridor's traffic at half the planning flows: preemption, switched in through the
    simulation's public calls and held while the vehicle waits in the queue it clears, takes
    time off every run."""
    from optimize.evaluation import des_emergency

    plans, co = montpellier_coordinated
    name = max(co.bands, key=lambda n: len(co.arterials[n].junctions))
    art = co.arterials[name]
    ds = des_emergency(
        montpellier, co.plans, plans.models, art, flows_from=plans, scale=0.5, runs=3
    )
    assert ds.attrs["route_signals"] == len(art.junctions)  # through every signal of it
    tt = ds["travel_time"]
    assert np.isfinite(tt.values).all()
    assert (tt.sel(scenario="preemption") < tt.sel(scenario="without")).all()
    assert (tt.sel(scenario="preemption") >= float(ds["free_flow"]) - 1.0).all()
    # a call finding the junction still recovering from the previous vehicle's is refused
    assert ds.attrs["refused"] <= 0.3 * ds.attrs["route_signals"] * ds.sizes["vehicle"]


def test_buses_in_the_des_gain_from_priority(bondy):
    """Bondy's buses among the morning traffic: priority (check-in / check-out: early green
    at red, green held until the bus checks out; validated as spliced into the running cycle)
    cuts their mean delay, at little cost to the others."""
    from optimize.evaluation import bus_trips, des_buses
    from twin.scenarios.network import scenario_from_twin

    plans = signal_plans(bondy, day=REFERENCE_WEEKDAY, hour=8)
    routes = bus_routes(bondy)
    prio = bus_priorities(plans, plans.models, bus_groups(routes, plans.models))
    # the extract's own traffic: the external trips of its gateways (three tertiary entry
    # roads) queue at its edges whatever the signals do
    from twin.scenarios.demand import build_demand

    local = build_demand(bondy).with_params(external_share=0.0)
    sc = scenario_from_twin(
        bondy,
        day=REFERENCE_WEEKDAY,
        hours=(8, 9),
        rng=2018,
        plans=dict(plans),
        model=local,
        progress=False,
    )
    buses = bus_trips(
        sc.graph, routes, prio, plans.models, window_s=(120.0, 3000.0), headway_s=600.0
    )
    assert len(buses) >= 20
    ds = des_buses(sc, dict(plans), plans.models, prio, buses)
    d = ds["delay"].mean("bus")
    assert ds.attrs["served"] > 0
    assert float(d.sel(scenario="priority")) < float(d.sel(scenario="without")) - 2.0
    others = ds["others_travel_time"]
    assert float(others.sel(scenario="priority")) < 1.05 * float(others.sel(scenario="without"))
    stuck = ds["others_unfinished"]
    assert int(stuck.sel(scenario="priority")) <= int(stuck.sel(scenario="without"))
