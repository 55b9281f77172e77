"""Tests of the fixed-time signal plans and the mesoscopic traffic DES."""

from __future__ import annotations

import json
import pickle

import networkx as nx
import numpy as np
import pytest
from graphs import X0, Y0, cross, line

from twin._errors import InputValidationError
from twin.scenarios.signals import Phase, SignalPlan, group_by_axis, webster_plan
from twin.scenarios.traffic import Incident, ODDemand, TrafficScenario, Trip, run


# ---------------------------------------------------------------- signal plans ----------------
def test_webster_hand_worked_cross_roads():
    # N-S phase: 500 and 400 pcu/h on one lane -> y_NS = 500/1800 = 0.27778
    # E-W phase: 600 and 300 pcu/h on one lane -> y_EW = 600/1800 = 0.33333
    # Y = 0.61111; L = 2 phases x 5 s = 10 s
    # C0 = (1.5 x 10 + 5) / (1 - 0.61111) = 20 / 0.38889 = 51.43 s
    # effective green C0 - L = 41.43 s: g_NS = 0.27778/0.61111 x 41.43 = 18.83 s,
    # g_EW = 0.33333/0.61111 x 41.43 = 22.60 s
    g = cross()
    flows = {("n", "c", 0): 500.0, ("s", "c", 0): 400.0, ("e", "c", 0): 600.0, ("w", "c", 0): 300.0}
    plan = webster_plan("junction:1", flows, lanes=1, graph=g)
    assert plan.cycle_s == pytest.approx(51.43, abs=0.01)
    by_phase = {frozenset(p.approaches): p.green_s for p in plan.phases}
    ns = frozenset({("n", "c", 0), ("s", "c", 0)})
    ew = frozenset({("e", "c", 0), ("w", "c", 0)})
    assert set(by_phase) == {ns, ew}
    assert by_phase[ns] == pytest.approx(18.83, abs=0.01)
    assert by_phase[ew] == pytest.approx(22.60, abs=0.01)
    assert (plan.amber_s, plan.all_red_s) == (3.0, 2.0)


def test_webster_clamps_cycle():
    g = cross()
    low = {("n", "c", 0): 50.0, ("e", "c", 0): 50.0}
    assert webster_plan("j", low, graph=g).cycle_s == pytest.approx(40.0)
    high = {("n", "c", 0): 1200.0, ("e", "c", 0): 900.0}  # Y > 1: oversaturated
    assert webster_plan("j", high, graph=g).cycle_s == pytest.approx(120.0)
    # two lanes halve the flow ratios
    two = webster_plan("j", {("n", "c", 0): 900.0, ("e", "c", 0): 900.0}, lanes=2, graph=g)
    one = webster_plan("j", {("n", "c", 0): 450.0, ("e", "c", 0): 450.0}, lanes=1, graph=g)
    assert two.cycle_s == pytest.approx(one.cycle_s)


def test_webster_rejects_bad_flow():
    with pytest.raises(InputValidationError, match=r"approach_flows_pcu_h.*'n', 'c', 0"):
        webster_plan("j", {("n", "c", 0): -1.0, ("e", "c", 0): 10.0})
    with pytest.raises(InputValidationError, match="not a non-negative flow"):
        webster_plan("j", {("n", "c", 0): float("nan")})


def test_group_by_axis_five_arms():
    b = {("a", 0, 0): 0.0, ("b", 0, 0): 180.0, ("c", 0, 0): 60.0, ("d", 0, 0): 120.0}
    groups = group_by_axis(b)
    assert len(groups) == 3
    assert (("a", 0, 0), ("b", 0, 0)) in groups


def test_plan_validation_and_serialisation():
    a, b = ("n", "c", 0), ("e", "c", 0)
    plan = SignalPlan("j", 60.0, 10.0, (Phase((a,), 25.0), Phase((b,), 25.0)))
    assert plan.green_windows() == {a: ((0.0, 25.0),), b: ((30.0, 55.0),)}
    assert plan.is_green(a, 10.0)
    assert not plan.is_green(a, 9.0)
    assert plan.is_green(b, 40.0)
    back = SignalPlan.from_dict(json.loads(plan.to_json()))
    assert back == plan
    assert pickle.loads(pickle.dumps(plan)) == plan
    with pytest.raises(InputValidationError, match="cycle_s.*outside"):
        SignalPlan("j", 130.0, 0.0, (Phase((a,), 60.0), Phase((b,), 60.0)))
    with pytest.raises(InputValidationError, match=r"phases\[1\].green_s.*minimum green"):
        SignalPlan("j", 40.0, 0.0, (Phase((a,), 31.0), Phase((b,), 4.0)), all_red_s=0.5)
    with pytest.raises(InputValidationError, match="differs from the sum"):
        SignalPlan("j", 60.0, 0.0, (Phase((a,), 25.0), Phase((b,), 20.0)))
    with pytest.raises(InputValidationError, match="offset_s"):
        SignalPlan("j", 60.0, 60.0, (Phase((a,), 25.0), Phase((b,), 25.0)))
    with pytest.raises(InputValidationError, match="missing field 'cycle_s'"):
        SignalPlan.from_dict({"junction": "j", "phases": []})


# ---------------------------------------------------------------- traffic DES -----------------
def test_free_flow_travel_time_is_length_over_speed():
    g = line(3, 200.0)
    sc = TrafficScenario(g, trips=(Trip("a", 0, 3, 12.0),), speed_factor_sd=0.0, progress=False)
    ds = run(sc, rng=0)
    assert float(ds["travel_time"].sel(trip="a")) == pytest.approx(60.0)  # 600 m at 10 m/s
    assert float(ds["arrive"].sel(trip="a")) == pytest.approx(72.0)
    for name in ("flow", "speed", "queue", "travel_time", "mean_travel_time", "delay"):
        assert {"units", "long_name"} <= set(ds[name].attrs)
    assert ds["time"].attrs["timezone"] == "UTC"
    assert float(ds["speed"].sel(edge="0->1#0").isel(time=0)) == pytest.approx(10.0)


def test_link_discharges_at_saturation_flow():
    # 200 vehicles released at once on a one-lane link: the downstream edge receives them at
    # 1,800 veh/h, so the last one leaves the first edge ~ 200 / 0.5 = 400 s after the first.
    g = line(2, 400.0)
    trips = tuple(Trip(f"v{i}", 0, 2, 0.0) for i in range(200))
    sc = TrafficScenario(g, trips=trips, speed_factor_sd=0.0, spillback=False, progress=False)
    ds = run(sc, rng=0)
    arr = np.sort(ds["arrive"].values)
    rate = (len(arr) - 1) / (arr[-1] - arr[0])  # veh/s on the second edge
    assert rate == pytest.approx(0.5, rel=0.02)
    assert ds.attrs["n_unfinished"] == 0
    # queue reported on the first edge only
    q = ds["queue"].sum("time")
    assert float(q.sel(edge="0->1#0")) > 10 * float(q.sel(edge="1->2#0")) >= 0


def test_signal_gates_discharge_and_reports_delay():
    g = cross(lanes=1)
    a, b = ("w", "c", 0), ("n", "c", 0)
    plan = SignalPlan("junction:1", 60.0, 0.0, (Phase((a,), 25.0), Phase((b,), 25.0)))
    # one vehicle reaches the stop line from the west at t = 30 s (red until t = 60 s)
    trips = (Trip("late", "w", "e", 0.0),)
    kw = {"speed_factor_sd": 0.0, "progress": False}
    ds = run(TrafficScenario(g, trips=trips, plans=(plan,), **kw), rng=0)
    # it stopped: its braking happens within its 30 s wait; accelerating back to 10 m/s loses
    # 10 / (2 x 2.6) = 1.92 s after the stop line
    tt = float(ds["travel_time"].sel(trip="late"))
    assert tt == pytest.approx(60.0 + 30.0 + 1.92, abs=0.05)
    nostop = run(TrafficScenario(g, trips=trips, plans=(plan,), stop_loss=False, **kw), rng=0)
    assert float(nostop["travel_time"].sel(trip="late")) == pytest.approx(60.0 + 30.0, abs=1.0)
    delay = ds["delay"].sel(approach="w->c#0")
    assert float(delay) == pytest.approx(30.0, abs=1.0)
    assert str(ds["junction"].sel(approach="w->c#0").values) == "junction:1"
    # a saturated approach passes at most green/cycle of its saturation flow
    many = tuple(Trip(f"v{i}", "w", "e", 0.0) for i in range(300))
    # (reference: the same junction unsignalised, without give-way to the N-S road)
    free = run(
        TrafficScenario(g, trips=many, spillback=False, priority_junctions=False, **kw), rng=0
    )
    gated = run(TrafficScenario(g, trips=many, plans=(plan,), spillback=False, **kw), rng=0)
    span_free = np.ptp(free["arrive"].values)
    span_gated = np.ptp(gated["arrive"].values)
    assert span_gated / span_free == pytest.approx(60.0 / 25.0, rel=0.1)


def test_routing_avoids_closed_edge_and_reports_unreachable():
    # two parallel routes 0 -> 1 -> 3 (short) and 0 -> 2 -> 3 (long)
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for n, (x, y) in {0: (0, 0), 1: (300, 100), 2: (300, -400), 3: (600, 0), 9: (0, 900)}.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    for u, v, length in ((0, 1, 300), (1, 3, 300), (0, 2, 500), (2, 3, 500)):
        g.add_edge(u, v, length=float(length), speed_kph=36.0, lanes=1, highway="primary")
    trips = (Trip("a", 0, 3, 0.0), Trip("b", 0, 3, 700.0), Trip("lost", 0, 9, 10.0))
    inc = (Incident((0, 1, 0), 1, 600.0, 2000.0),)
    sc = TrafficScenario(g, trips=trips, incidents=inc, speed_factor_sd=0.0, progress=False)
    ds = run(sc, rng=0)
    assert float(ds["travel_time"].sel(trip="a")) == pytest.approx(60.0)
    assert float(ds["travel_time"].sel(trip="b")) == pytest.approx(100.0)  # detour
    assert "lost" not in ds["trip"].values
    assert ds.attrs["n_dropped"] == 1
    assert json.loads(ds.attrs["unreachable_pairs"]) == [["0", "9", 1]]


def test_incident_on_unknown_edge_and_bad_inputs():
    g = line(2)
    trips = (Trip("a", 0, 2, 0.0),)
    with pytest.raises(InputValidationError, match=r"Incident.edge.*\(5, 6, 0\)"):
        run(TrafficScenario(g, trips=trips, incidents=(Incident((5, 6, 0), 1, 0, 10),)))
    with pytest.raises(InputValidationError, match="end_s"):
        Incident((0, 1, 0), 1, 10.0, 5.0)
    with pytest.raises(InputValidationError, match="origin_node 42"):
        run(TrafficScenario(g, trips=(Trip("x", 42, 2, 0.0),), progress=False))
    with pytest.raises(InputValidationError, match=r"trip 'r'.route: edges 0 and 1"):
        run(
            TrafficScenario(
                g, trips=(Trip("r", 0, 2, 0.0, ((0, 1, 0), (0, 1, 0))),), progress=False
            )
        )


def test_incident_closing_lanes_delays_trips():
    g = line(2, 400.0, lanes=2)
    trips = tuple(Trip(f"v{i}", 0, 2, 0.0) for i in range(200))
    kw = {"speed_factor_sd": 0.0, "spillback": False, "progress": False}
    base = run(TrafficScenario(g, trips=trips, **kw), rng=0)
    inc = (Incident((0, 1, 0), 1, 0.0, 3600.0),)
    closed = run(TrafficScenario(g, trips=trips, incidents=inc, **kw), rng=0)
    # one lane of two: the platoon takes twice as long to pass
    assert np.ptp(closed["arrive"].values) == pytest.approx(
        2 * np.ptp(base["arrive"].values), rel=0.05
    )


def test_queue_spills_back_and_only_a_long_blocked_head_is_let_through():
    # 0 -> 1 -> 2 -> 3 -> 4, 75 m edges of one lane (storage 10 vehicles each); 2 -> 3 is
    # closed for 2,000 s, so 1 -> 2 fills, then 0 -> 1 fills behind it and holds the rest at
    # their origin
    g = line(4, 75.0)
    route = ((0, 1, 0), (1, 2, 0), (2, 3, 0), (3, 4, 0))
    trips = tuple(Trip(f"v{i}", 0, 4, float(i), route=route) for i in range(60))
    inc = (Incident((2, 3, 0), 1, 0.0, 2000.0),)
    kw = {"speed_factor_sd": 0.0, "progress": False, "slot_s": 100.0, "max_blocked_s": 100.0}
    ds = run(TrafficScenario(g, trips=trips, incidents=inc, **kw), rng=0)
    entered = (ds["flow"].sel(edge="1->2#0") * 100.0 / 3600.0).values  # vehicles per slot
    during = entered[:20]  # the 20 slots of the closure
    # 10 fill 1 -> 2; after that only the head of 0 -> 1 that has waited 100 s for room goes
    # in: at most one per 100 s slot, never the whole queue behind it; none enters the closed
    # edge itself (test_a_held_head_never_enters_a_closed_edge)
    full = int(np.argmax(np.cumsum(during) >= 10))
    assert during[: full + 1].sum() <= 11
    assert during[full + 1 :].max() <= 1
    assert 10 + 15 <= during.sum() <= 10 + 20
    assert float(ds["flow"].sel(edge="2->3#0")[:20].sum()) == 0.0
    assert ds.attrs["n_unfinished"] == 0  # all get through once the edge reopens
    no_spill = run(TrafficScenario(g, trips=trips, incidents=inc, spillback=False, **kw), rng=0)
    assert float((no_spill["flow"].sel(edge="1->2#0")[:20] * 100.0 / 3600.0).sum()) == 60.0


def test_a_held_head_never_enters_a_closed_edge():
    # 0 -> 1 -> 2 with a fixed route: 1 -> 2 is closed from 10 s to 1,000 s, so the vehicle
    # waits at the end of 0 -> 1 far past max_blocked_s, and goes on only once it reopens
    g = line(2)
    route = ((0, 1, 0), (1, 2, 0))
    trips = (Trip("a", 0, 2, 0.0, route=route),)
    inc = (Incident((1, 2, 0), 1, 10.0, 1000.0),)
    kw = {"speed_factor_sd": 0.0, "progress": False, "slot_s": 100.0, "max_blocked_s": 10.0}
    ds = run(TrafficScenario(g, trips=trips, incidents=inc, **kw), rng=0)
    entered = ds["flow"].sel(edge="1->2#0").values
    assert float(entered[:10].sum()) == 0.0
    assert float(entered[10:].sum()) > 0.0
    # 20 s on 1 -> 2 once it reopens, plus the start from a stop
    assert 1020.0 <= float(ds["arrive"].sel(trip="a")) <= 1022.0
    assert int(ds["forced"].sum()) == 0


def test_a_held_head_routes_round_a_closed_edge():
    # 5 -> 0, then 0 -> 1 -> 3 (short) or 0 -> 2 -> 3 (long); 0 -> 1 closes after the
    # vehicle has left on the short route: at the end of 5 -> 0 it takes the long one
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for n, (x, y) in {5: (-300, 0), 0: (0, 0), 1: (300, 100), 2: (300, -400), 3: (600, 0)}.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    for u, v, length in ((5, 0, 300), (0, 1, 300), (1, 3, 300), (0, 2, 500), (2, 3, 500)):
        g.add_edge(u, v, length=float(length), speed_kph=36.0, lanes=1, highway="primary")
    inc = (Incident((0, 1, 0), 1, 10.0, 2000.0),)
    kw = {"speed_factor_sd": 0.0, "progress": False, "max_blocked_s": 10.0}
    ds = run(TrafficScenario(g, trips=(Trip("a", 5, 3, 0.0),), incidents=inc, **kw), rng=0)
    assert float(ds["flow"].sel(edge="0->1#0").sum()) == 0.0
    assert float(ds["flow"].sel(edge="0->2#0").sum()) > 0.0
    assert float(ds["travel_time"].sel(trip="a")) == pytest.approx(130.0, abs=2.0)


def test_demand_validation_names_zone_and_slot():
    rates = np.zeros((2, 2, 2))
    rates[1, 0, 1] = -5.0
    with pytest.raises(InputValidationError, match=r"zone 'west' to zone 'east' in slot 1"):
        ODDemand(("west", "east"), ("w", "e"), rates)
    rates[1, 0, 1] = np.nan
    with pytest.raises(InputValidationError, match="negative or NaN"):
        ODDemand(("west", "east"), ("w", "e"), rates)


def test_demand_run_is_deterministic_and_conserves_vehicles():
    g = cross(lanes=2)
    zones = ("n", "e", "s", "w")
    rates = np.full((2, 4, 4), 120.0)  # veh/h per OD cell and slot
    demand = ODDemand(zones, zones, rates, slot_s=900.0)
    sc = TrafficScenario(g, demand=demand, duration_s=3600.0, progress=False)
    a, b, c = run(sc, rng=7), run(sc, rng=np.random.default_rng(7)), run(sc, rng=8)
    assert a["travel_time"].equals(b["travel_time"])
    assert not (a.sizes["trip"] == c.sizes["trip"] and a["travel_time"].equals(c["travel_time"]))
    n = a.sizes["trip"]
    assert 0.6 * 720 < n < 1.4 * 720  # 12 OD pairs x 120 veh/h x 0.5 h
    assert a.attrs["n_unfinished"] == 0
    # every trip enters two edges (arm in, arm out): flow conservation
    entered = float((a["flow"] * 900.0 / 3600.0).sum())
    assert entered == pytest.approx(2 * n)
    assert a.sizes["od"] == 12
    assert pickle.loads(pickle.dumps(sc)).demand.zones == zones


def test_dataset_round_trips_netcdf(tmp_path):
    g = cross()
    ds = run(TrafficScenario(g, trips=(Trip("a", "n", "s", 0.0),), progress=False), rng=1)
    path = tmp_path / "traffic.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as back:
        assert back["travel_time"].values == pytest.approx(ds["travel_time"].values)


# ---------------------------------------------------------------- priority junctions ----------
def test_gap_acceptance_capacity_hand_worked():
    from twin.scenarios.traffic import gap_acceptance_capacity

    # Siegloch, t_c = 6.5 s, t_f = 4.0 s: c = 3600 / 4 * exp(-q (6.5 - 2) / 3600)
    # q = 0: 900 veh/h; q = 900 veh/h: 900 * exp(-1.125) = 900 * 0.32465 = 292.2 veh/h
    c = gap_acceptance_capacity(np.array([0.0, 900.0]), critical_gap_s=6.5, follow_up_s=4.0)
    assert c == pytest.approx([900.0, 292.2], abs=0.1)


def test_hcm_potential_capacity_hand_worked():
    from twin.scenarios.traffic import hcm_potential_capacity

    # HCM: c = v_c exp(-v_c t_c / 3600) / (1 - exp(-v_c t_f / 3600))
    # right turn, v_c = 450 veh/h, 6.2 / 3.3 s: 450 * 0.46070 / 0.33801 = 613.4 veh/h
    # through, v_c = 900 veh/h, 6.5 / 4.0 s: 900 * 0.19691 / 0.63212 = 280.4 veh/h
    # left turn, v_c = 900 veh/h, 7.1 / 3.5 s: 900 * 0.16948 / 0.58314 = 261.6 veh/h
    # no conflicting flow: 3600 / t_f
    c = hcm_potential_capacity(
        np.array([450.0, 900.0, 900.0, 0.0]),
        critical_gap_s=np.array([6.2, 6.5, 7.1, 6.5]),
        follow_up_s=np.array([3.3, 4.0, 3.5, 4.0]),
    )
    assert c == pytest.approx([613.4, 280.4, 261.6, 900.0], abs=0.1)


def minor_discharge(g, major_trips, *, dest="e", t_from=1200.0, t_to=3000.0, **kw):
    """Vehicles of a saturated approach (w -> dest) arriving in [t_from, t_to)."""
    minor = tuple(Trip(f"m{i}", "w", dest, 0.0) for i in range(1500))
    sc = TrafficScenario(
        g, trips=minor + major_trips, speed_factor_sd=0.0, progress=False, duration_s=3600, **kw
    )
    ds = run(sc, rng=0)
    arr = ds["arrive"].values[: len(minor)]
    return int(((arr >= t_from) & (arr < t_to)).sum())


def test_priority_junction_minor_capacity_against_hand_worked_numbers():
    g = cross(lanes=1)  # all arms 'primary': the N-S pair is the major road (tie rule)
    # no major traffic: the minor lane discharges at 3600 / t_f = 900 veh/h -> 450 in 1,800 s
    assert minor_discharge(g, ()) == pytest.approx(450, abs=5)
    # without give-way it would discharge at the saturation flow (1,800 veh/h -> 900)
    assert minor_discharge(g, (), priority_junctions=False) == pytest.approx(900, abs=5)
    # 900 veh/h on the major road (450 veh/h each way); HCM potential capacity per movement
    # (test_hcm_potential_capacity_hand_worked) over 1,800 s:
    major = tuple(Trip(f"ns{i}", "n", "s", 8.0 * i) for i in range(450)) + tuple(
        Trip(f"sn{i}", "s", "n", 8.0 * i + 4.0) for i in range(450)
    )
    # through (w -> e) against both streams, 6.5 / 4.0 s: 280.4 veh/h -> 140.2
    assert minor_discharge(g, major) == pytest.approx(140.2, rel=0.05)
    # left turn (w -> n) against both streams, 7.1 / 3.5 s: 261.6 veh/h -> 130.8
    assert minor_discharge(g, major, dest="n") == pytest.approx(130.8, rel=0.05)
    # right turn (w -> s) against the stream from its left only (n -> s, 450 veh/h),
    # 6.2 / 3.3 s: 613.4 veh/h -> 306.7
    assert minor_discharge(g, major, dest="s") == pytest.approx(306.7, rel=0.05)
    # where traffic keeps left, the near stream of that turn (now w -> n) is s -> n
    left_hand = minor_discharge(g, major, dest="n", drive_on="left")
    assert left_hand == pytest.approx(306.7, rel=0.05)


def test_a_vehicle_on_a_give_way_approach_slows_to_look() -> None:
    # alone on the network, a vehicle crossing the major road from a give-way approach (W-E;
    # the N-S pair is the major road) brakes to look for a gap and accelerates again:
    # v / 2 (1 / a + 1 / b) = 5 * (1 / 2.6 + 1 / 4.5) = 3.03 s at 10 m/s; on the major road it
    # keeps its speed (60 s for the two 300 m arms)
    g = cross(lanes=1)
    kw = {"speed_factor_sd": 0.0, "progress": False}
    minor = run(TrafficScenario(g, trips=(Trip("m", "w", "e", 0.0),), **kw), rng=0)
    major = run(TrafficScenario(g, trips=(Trip("M", "n", "s", 0.0),), **kw), rng=0)
    assert float(major["travel_time"].item()) == pytest.approx(60.0)
    assert float(minor["travel_time"].item()) == pytest.approx(60.0 + 5 * (1 / 2.6 + 1 / 4.5))
    # without the give-way rule, or without the stop-and-start loss, it does not slow
    for off in ({"priority_junctions": False}, {"stop_loss": False}):
        alone = run(TrafficScenario(g, trips=(Trip("m", "w", "e", 0.0),), **kw, **off), rng=0)
        assert float(alone["travel_time"].item()) == pytest.approx(60.0)


def test_priority_junction_major_road_is_the_higher_class():
    g = cross(lanes=1)
    for u, v in (("n", "c"), ("s", "c"), ("c", "n"), ("c", "s")):
        g.edges[u, v, 0]["highway"] = "residential"
    # the E-W road is now the major road: its approach discharges at saturation flow
    assert minor_discharge(g, ()) == pytest.approx(900, abs=5)
    # and the residential N-S approach gives way
    flipped = nx.relabel_nodes(g, {"w": "n", "e": "s", "n": "w", "s": "e"})
    assert minor_discharge(flipped, ()) == pytest.approx(450, abs=5)


def test_left_turn_gives_way_to_the_opposing_flow():
    g = cross(lanes=1)
    kw = {"dest": "n", "priority_junctions": False}  # w -> c -> n turns left
    # no opposing flow: c = 3600 / 2.2 = 1636.4 veh/h (each left turner uses 1800 / 1636.4
    # = 1.1 vehicles of capacity) -> 818 in 1,800 s
    assert minor_discharge(g, (), **kw) == pytest.approx(818, abs=5)
    assert minor_discharge(g, (), left_turns_yield=False, **kw) == pytest.approx(900, abs=5)
    # 900 veh/h opposing (e -> w): c = 1636.4 * exp(-900 * (4.1 - 1.1) / 3600) = 773.0 veh/h
    # -> 386.5 in 1,800 s
    opposing = tuple(Trip(f"ew{i}", "e", "w", 4.0 * i) for i in range(900))
    assert minor_discharge(g, opposing, **kw) == pytest.approx(386.5, rel=0.05)
    # a right turn (w -> c -> s) crosses no opposing flow
    right = minor_discharge(g, opposing, dest="s", priority_junctions=False)
    assert right == pytest.approx(900, abs=5)


def test_sumo_net_edges_count_the_junction_crossing():
    # a SUMO edge stops at the junctions' borders: 179.2 m of lane between nodes 200 m apart
    g = line(1, length=200.0)
    g.edges[0, 1, 0]["length"] = 179.2
    kw = {"speed_factor_sd": 0.0, "progress": False}
    osm = run(TrafficScenario(g, trips=(Trip("a", 0, 1, 0.0),), **kw), rng=0)
    assert float(osm["travel_time"].sel(trip="a")) == pytest.approx(17.92)  # 179.2 m at 10 m/s
    for n in g.nodes:
        g.nodes[n]["sumo_type"] = "priority"
    sumo = run(TrafficScenario(g, trips=(Trip("a", 0, 1, 0.0),), **kw), rng=0)
    assert float(sumo["travel_time"].sel(trip="a")) == pytest.approx(20.0)  # 200 m


def test_routes_count_the_delay_of_giving_way():
    # a cross-roads whose N-S road is major, and a bypass of the W-E crossing, w -> b -> e,
    # 2 x 360 m (72 s at 10 m/s) against 2 x 300 m (60 s) through the junction. Crossing from
    # the give-way approach costs the stop to look, 5 (1 / 2.6 + 1 / 4.5) = 3.03 s, plus the
    # time to find a gap, 3600 / c (HCM): with no major traffic c = 900 veh/h (4.0 s), so the
    # junction is quicker (67.0 s); with 900 veh/h on the major road c = 280.4 veh/h (12.8 s),
    # and the bypass is (75.9 s)
    g = cross(lanes=1)
    g.add_node("b", x=X0, y=Y0 - 150.0)
    for u, v in (("w", "b"), ("b", "e")):
        g.add_edge(u, v, length=360.0, speed_kph=36.0, lanes=1, highway="primary")
    major = tuple(Trip(f"ns{i}", "n", "s", 8.0 * i) for i in range(300)) + tuple(
        Trip(f"sn{i}", "s", "n", 8.0 * i + 4.0) for i in range(300)
    )
    probe = (Trip("x", "w", "e", 600.0),)

    def through_junction(trips, **kw):
        sc = TrafficScenario(g, trips=trips, speed_factor_sd=0.0, progress=False, **kw)
        ds = run(sc, rng=0)
        on = (ds["edge_u"] == "w") & (ds["edge_v"] == "c")
        return round(float(ds["flow"].where(on, 0).sum()) * ds.attrs["slot_s"] / 3600)

    assert through_junction(probe) == 1
    assert through_junction(probe + major) == 0
    # without the give-way delay in the routing costs, the busy junction looks as quick
    assert through_junction(probe + major, route_give_way=False) == 1
