"""The traffic simulation's disturbance API: lanes, speeds and signal plans changed at a time.

Crisis scenarios steer a run through these calls (or the scenario's ``disturbances``) and never
touch its internals; each test checks a figure worked by hand on a small network.
"""

from __future__ import annotations

import pickle

import networkx as nx
import numpy as np
import pytest
from graphs import X0, Y0, cross, line

from twin._errors import InputValidationError
from twin.scenarios.signals import Phase, SignalPlan
from twin.scenarios.traffic import (
    Incident,
    PlanChange,
    SpeedChange,
    TrafficScenario,
    TrafficSimulation,
    Trip,
    run,
)


def plan(offset_s: float, green_n: float = 10.0) -> SignalPlan:
    # north approach first, then east; cycle = 10 + 20 + 2 x (3 + 2) = 40 s
    phases = (Phase((("n", "c", 0),), green_n), Phase((("e", "c", 0),), 30.0 - green_n))
    return SignalPlan("junction:c", 40.0, offset_s, phases)


def scenario(g: nx.MultiDiGraph, trips: tuple[Trip, ...], **kw: object) -> TrafficScenario:
    return TrafficScenario(g, trips=trips, speed_factor_sd=0.0, progress=False, **kw)  # type: ignore[arg-type]


def test_speed_change_slows_vehicles_entering_while_it_holds() -> None:
    # 200 m edges at 10 m/s: 20 s each. Half speed on edge (1, 2) from t = 100 s to 300 s.
    g = line(2)
    trips = (Trip("before", 0, 2, 0.0), Trip("during", 0, 2, 150.0), Trip("after", 0, 2, 400.0))
    sim = TrafficSimulation(scenario(g, trips), rng=0)
    sim.set_speed([(1, 2, 0)], 0.5, start_s=100.0, end_s=300.0)
    tt = sim.result()["travel_time"].to_series()
    assert tt["before"] == pytest.approx(40.0)
    assert tt["during"] == pytest.approx(20.0 + 40.0)
    assert tt["after"] == pytest.approx(40.0)
    # the same change given as data in the scenario gives the same run
    declared = run(scenario(g, trips, disturbances=(SpeedChange(((1, 2),), 0.5, 100.0, 300.0),)))
    np.testing.assert_array_equal(declared["travel_time"].values, tt.values)


def test_overlapping_speed_changes_multiply_and_end() -> None:
    g = line(1)
    trips = (Trip("a", 0, 1, 10.0), Trip("b", 0, 1, 60.0))
    sim = TrafficSimulation(scenario(g, trips), rng=0)
    sim.set_speed([(0, 1, 0)], 0.5, start_s=0.0)  # to the end of the run
    sim.set_speed([(0, 1, 0)], 0.5, start_s=0.0, end_s=50.0)
    tt = sim.result()["travel_time"].to_series()
    assert tt["a"] == pytest.approx(80.0)  # quarter speed: 4 x 20 s
    assert tt["b"] == pytest.approx(40.0)  # the second change has ended


def test_closing_lanes_during_a_run_matches_a_declared_incident() -> None:
    # two parallel routes 0 -> 1 -> 3 (600 m) and 0 -> 2 -> 3 (1,000 m)
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for n, (x, y) in {0: (0, 0), 1: (300, 100), 2: (300, -400), 3: (600, 0)}.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    for u, v, length in ((0, 1, 300), (1, 3, 300), (0, 2, 500), (2, 3, 500)):
        g.add_edge(u, v, length=float(length), speed_kph=36.0, lanes=1, highway="primary")
    trips = (Trip("a", 0, 3, 0.0), Trip("b", 0, 3, 700.0), Trip("c", 0, 3, 2500.0))
    sim = TrafficSimulation(scenario(g, trips), rng=0)
    sim.run_until(300.0)
    assert sim.now == pytest.approx(300.0)
    sim.close_lanes((0, 1, 0), 1, start_s=600.0, end_s=2000.0)
    steered = sim.result()
    tt = steered["travel_time"].to_series()
    assert tt.tolist() == pytest.approx([60.0, 100.0, 60.0])  # b detours; c after reopening
    declared = run(scenario(g, trips, disturbances=(Incident((0, 1, 0), 1, 600.0, 2000.0),)))
    np.testing.assert_array_equal(declared["travel_time"].values, steered["travel_time"].values)


def test_switching_the_signal_plan_at_a_time() -> None:
    # n -> s: 300 m to the stop line at 10 m/s, ready at t = 30 s (mod 40: 30).
    # Plan A (offset 0) greens n during [0, 10) of each cycle: the vehicle waits for the next
    # green. Plan B (offset 15) greens n during [15, 25) + ... [15, 35) with a 20 s green: it
    # passes at once, as with no signal (60 s).
    g = cross()
    trips = (Trip("t", "n", "s", 0.0),)
    a = plan(0.0)
    b = plan(15.0, green_n=20.0)
    free = run(scenario(g, trips))["travel_time"].item()
    held = run(scenario(g, trips, plans=(a,)))["travel_time"].item()
    assert free == pytest.approx(60.0)
    assert held > free + 5.0
    sim = TrafficSimulation(scenario(g, trips, plans=(a,)), rng=0)
    sim.set_plan(b, at_s=0.0)
    assert sim.result()["travel_time"].item() == pytest.approx(free)
    late = run(scenario(g, trips, plans=(a,), disturbances=(PlanChange(b, 100.0),)))
    assert late["travel_time"].item() == pytest.approx(held)
    # a plan switched on at an unsignalised junction signalises it
    sim = TrafficSimulation(scenario(g, trips), rng=0)
    sim.set_plan(a, at_s=0.0)
    assert sim.result()["travel_time"].item() == pytest.approx(held)


def test_disturbances_are_checked_before_they_apply() -> None:
    g = line(2)
    trips = (Trip("a", 0, 2, 0.0),)
    sim = TrafficSimulation(scenario(g, trips), rng=0)
    with pytest.raises(InputValidationError, match=r"set_speed.edges: edge \(5, 6, 0\)"):
        sim.set_speed([(5, 6, 0)], 0.5, start_s=0.0)
    with pytest.raises(InputValidationError, match="SpeedChange.factor"):
        sim.set_speed([(0, 1, 0)], 0.0, start_s=0.0)
    with pytest.raises(InputValidationError, match="close_lanes.lanes"):
        sim.close_lanes((0, 1, 0), 0, start_s=0.0)
    with pytest.raises(InputValidationError, match="close_lanes.end_s"):
        sim.close_lanes((0, 1, 0), 1, start_s=10.0, end_s=5.0)
    with pytest.raises(InputValidationError, match=r"SignalPlan\(junction:c\).approaches"):
        sim.set_plan(plan(0.0), at_s=0.0)  # the line has no node 'n'
    sim.run_until(30.0)
    with pytest.raises(InputValidationError, match="set_speed.start_s: 10 s is before"):
        sim.set_speed([(0, 1, 0)], 0.5, start_s=10.0)
    with pytest.raises(InputValidationError, match="disturbances"):
        TrafficScenario(g, trips=trips, disturbances=("snow",))  # type: ignore[arg-type]
    sim.result()
    with pytest.raises(InputValidationError, match="the run has ended"):
        sim.close_lanes((0, 1, 0), 1, start_s=sim.now + 10.0)
    # one approach, two junctions
    two = SignalPlan("junction:other", 40.0, 0.0, (Phase((("n", "c", 0),), 35.0),))
    sim = TrafficSimulation(scenario(cross(), (Trip("t", "n", "s", 0.0),), plans=(plan(0.0),)))
    with pytest.raises(InputValidationError, match="served by the plan of junction 'junction:c'"):
        sim.set_plan(two, at_s=0.0)


def test_a_scenario_with_disturbances_pickles() -> None:
    g = cross()
    sc = scenario(
        g,
        (Trip("t", "n", "s", 0.0),),
        plans=(plan(0.0),),
        disturbances=(
            Incident(("e", "c", 0), 1, 10.0, 20.0),
            SpeedChange((("n", "c", 0),), 0.7, 0.0),
            PlanChange(plan(15.0, green_n=20.0), 50.0),
        ),
    )
    again = pickle.loads(pickle.dumps(sc))
    assert again.disturbances == sc.disturbances
    xr_a, xr_b = run(sc, rng=3), run(again, rng=3)
    np.testing.assert_array_equal(xr_a["travel_time"].values, xr_b["travel_time"].values)
