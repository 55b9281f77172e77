"""What the signal evaluation reads from the traffic DES: stops per approach, programs switched
during a run, and where a vehicle is (for bus and emergency calls).

Each figure is worked by hand on a one-junction network.
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pytest
from graphs import cross

from twin._errors import InputValidationError
from twin.scenarios.signals import Phase, SignalPlan
from twin.scenarios.traffic import SignalProgram, TrafficScenario, TrafficSimulation, Trip, run

N_C, C_S, E_C = ("n", "c", 0), ("c", "s", 0), ("e", "c", 0)


def plan() -> SignalPlan:
    # north 20 s green, east 10 s; cycle 20 + 10 + 2 x (3 + 2) = 40 s
    return SignalPlan("junction:c", 40.0, 0.0, (Phase((N_C,), 20.0), Phase((E_C,), 10.0)))


def north_south(headway_s: float, n: int, prefix: str = "v") -> tuple[Trip, ...]:
    return tuple(Trip(f"{prefix}{i}", "n", "s", i * headway_s, (N_C, C_S)) for i in range(n))


def scenario(trips: tuple[Trip, ...]) -> TrafficScenario:
    return TrafficScenario(
        cross(), trips=trips, plans=(plan(),), speed_factor_sd=0.0, progress=False, dt_s=1.0
    )


def test_stops_per_approach_follow_the_uniform_arrival_stop_share() -> None:
    # arrivals every 7 s (514 veh/h, y = 514 / 1800 = 0.286), incommensurate with the 40 s
    # cycle so that they sample it evenly; green 20 s of 40: a vehicle stops if it arrives on
    # red or while the red's queue clears, the share (1 - g/C) / (1 - y) = 0.5 / 0.714 = 0.70
    # (the DES gives 0.65: the last vehicles of a clearing queue, discharged within a 1 s
    # step of their arrival, are not held)
    ds = run(scenario(north_south(7.0, 500)), rng=1)
    a = ds["approach"].values.tolist().index("n->c#0")
    assert float(ds["stops"][a]) == pytest.approx(0.70, abs=0.07)
    assert ds["stops"].attrs["units"] == "1"
    # the east approach carries nothing: no share
    assert np.isnan(float(ds["stops"][ds["approach"].values.tolist().index("e->c#0")]))


def test_no_stops_without_a_red_and_every_vehicle_stops_behind_a_long_red() -> None:
    always = SignalProgram("junction:c", 40.0, 0.0, ((N_C, C_S, ((0.0, 40.0),)),))
    sim = TrafficSimulation(scenario(north_south(7.0, 100)), rng=1)
    sim.set_program(always, at_s=0.0)
    ds = sim.result()
    assert float(ds["stops"].sel(approach="n->c#0")) == 0.0
    # dense arrivals (every 1 s, past the 2 s saturation headway): queues never clear
    ds = run(scenario(north_south(1.0, 200)), rng=1)
    assert float(ds["stops"].sel(approach="n->c#0")) > 0.95


def test_set_program_switches_the_junction_at_its_time() -> None:
    # the vehicle reaches the stop line at 30 s, in the north red (25-40 s of the plan)
    trips = (Trip("bus", "n", "s", 0.0, (N_C, C_S)),)
    base = run(scenario(trips), rng=1)
    assert float(base["travel_time"].sel(trip="bus")) > 60.0 + 5.0
    always = SignalProgram("junction:c", 40.0, 0.0, ((N_C, C_S, ((0.0, 40.0),)),))
    sim = TrafficSimulation(scenario(trips), rng=1)
    sim.set_program(always, at_s=20.0)
    assert float(sim.result()["travel_time"].sel(trip="bus")) == pytest.approx(60.0)
    # back to the plan before the vehicle arrives: it waits again
    sim = TrafficSimulation(scenario(trips), rng=1)
    sim.set_program(always, at_s=10.0)
    sim.set_plan(plan(), at_s=20.0)
    assert float(sim.result()["travel_time"].sel(trip="bus")) > 65.0


def test_set_program_refuses_edges_of_another_graph_and_past_times() -> None:
    sim = TrafficSimulation(scenario(north_south(7.0, 3)), rng=1)
    bad = SignalProgram("junction:c", 40.0, 0.0, ((("x", "c", 0), C_S, ((0.0, 40.0),)),))
    with pytest.raises(InputValidationError, match=r"set_program\(junction:c\).movements"):
        sim.set_program(bad, at_s=0.0)
    sim.run_until(30.0)
    ok = SignalProgram("junction:c", 40.0, 0.0, ((N_C, C_S, ((0.0, 40.0),)),))
    with pytest.raises(InputValidationError, match="set_program.at_s"):
        sim.set_program(ok, at_s=10.0)


def test_locate_follows_a_trip_edge_by_edge() -> None:
    sim = TrafficSimulation(scenario((Trip("bus", "n", "s", 5.0, (N_C, C_S)),)), rng=1)
    assert sim.locate("bus") == (None, pytest.approx(np.nan, nan_ok=True))
    sim.run_until(10.0)
    edge, entered = sim.locate("bus")
    assert edge == N_C
    assert entered == pytest.approx(5.0)
    sim.run_until(60.0)  # green at 40 s: on the south arm from 40 s on, for 34 s
    edge, entered = sim.locate("bus")
    assert edge == C_S
    assert entered == pytest.approx(40.0)
    sim.result()
    assert sim.locate("bus")[0] is None
    with pytest.raises(InputValidationError, match="locate.trip"):
        sim.locate("tram")


# ------------------------------------------------ junction programmes run in the DES ----------
def _crossroads():  # type: ignore[no-untyped-def]
    from twin.signals.junction import approaches_of, build_junction, crossroads_graph

    g = crossroads_graph(arm_m=300.0)
    m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
    ns = [m.group(x).edge for x in ("a:1", "a:3")]
    ew = [m.group(x).edge for x in ("a:2", "a:4")]
    p = SignalPlan("junction:0", 60.0, 7.0, (Phase(ns, 25.0), Phase(ew, 25.0)), all_red_s=2.0)
    return g, m, p


def _traffic(g: nx.MultiDiGraph, n: int = 120) -> tuple[Trip, ...]:
    routes = {"ns": ((1, 0, 0), (0, 3, 0)), "ew": ((2, 0, 0), (0, 4, 0))}
    return tuple(
        Trip(f"{k}{i}", r[0][0], r[-1][1], i * 9.0 + (4.0 if k == "ew" else 0.0), r)
        for i in range(n)
        for k, r in routes.items()
    )


def test_a_plan_run_as_its_signal_group_programme_gives_the_same_run() -> None:
    from optimize.evaluation import des_program
    from twin.signals.safety import program_of

    g, m, p = _crossroads()
    trips = _traffic(g)
    sc = TrafficScenario(g, trips=trips, plans=(p,), speed_factor_sd=0.0, progress=False)
    a = run(sc, rng=1)
    sim = TrafficSimulation(sc, rng=1)
    sim.set_program(des_program(program_of(p, m), p, m, g, start_s=0.0), at_s=0.0)
    b = sim.result()
    np.testing.assert_allclose(a["travel_time"].values, b["travel_time"].values)
    assert float(a["delay"].mean()) > 5.0  # the signal holds vehicles: the check has teeth


def test_preemption_in_the_des_lets_the_called_vehicle_through_and_recovers() -> None:
    from optimize.evaluation import des_program
    from optimize.signals import preemption

    g, m, p = _crossroads()
    ev = Trip("ev", 2, 4, 300.0, ((2, 0, 0), (0, 4, 0)))  # east-west: red 0-30 s of the cycle
    sc = TrafficScenario(
        g, trips=(*_traffic(g), ev), plans=(p,), speed_factor_sd=0.0, progress=False
    )
    base = run(dataclasses.replace(sc), rng=1)
    # the vehicle reaches the stop line 300 + 300 / 13.9 = 321.6 s, the plan's east-west red
    # ((321.6 - 7) mod 60 = 14.6 s into the cycle): it waits
    free = 600.0 / (50 / 3.6)
    assert float(base["travel_time"].sel(trip="ev")) > free + 10.0
    call = 306.6  # 15 s of free-flow time before its stop line
    prog = preemption(p, m, m.group_of_edge((2, 0, 0)), call_s=call)
    start = call - (call - p.offset_s) % p.cycle_s
    sim = TrafficSimulation(dataclasses.replace(sc), rng=1)
    sim.set_program(des_program(prog, p, m, g, start_s=start), at_s=call)
    sim.set_plan(p, at_s=start + float(prog.horizon_s or 0.0))
    out = sim.result()
    # the call falls 59.6 s into the cycle, in the clearance after the east-west green, before
    # north-south's: east-west gets green again at once, for 20 s, and the vehicle (and the
    # one ahead of it) drives through at free speed. The hold ends at 79.6 s, after north-
    # south's green start (60 s): the first green start of the plan after it is east-west's own
    # (90 s), so east-west stays green through to the end of that green (115 s), and the plan
    # runs on from there, rather than the junction showing all-red until the next cycle
    assert prog.group("a:2").greens[1] == pytest.approx((59.6, 115.0))
    assert prog.horizon_s == pytest.approx(90.0 + p.cycle_s)
    assert float(out["travel_time"].sel(trip="ev")) == pytest.approx(free, abs=0.5)
    # after the recovery, the plan again: the last vehicles see the same signal as without
    late = [t for t in out["trip"].values if t.startswith("ns") and int(t[2:]) > 80]
    np.testing.assert_allclose(
        out["travel_time"].sel(trip=late).values, base["travel_time"].sel(trip=late).values
    )
