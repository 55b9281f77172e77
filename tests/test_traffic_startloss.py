"""The stop-and-start loss: what a vehicle held at a stop line loses, and on which edges."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from graphs import X0, Y0, cross

from twin.scenarios.signals import Phase, SignalPlan
from twin.scenarios.traffic import TrafficScenario, Trip, run

A, B = 2.6, 4.5  # SUMO's passenger car: acceleration, deceleration (m/s2)
V = 10.0  # 36 km/h


def cross_with_short_exit(short: float = 12.0) -> nx.MultiDiGraph:
    """The test cross-roads whose east exit is a ``short`` m edge c -> m then the rest to e."""
    g = cross()
    g.remove_edge("c", "e")
    g.add_node("m", x=X0 + short, y=Y0)
    kw = {"speed_kph": 36.0, "lanes": 1, "highway": "primary"}
    g.add_edge("c", "m", length=short, **kw)
    g.add_edge("m", "e", length=300.0 - short, **kw)
    return g


W_GREEN_FIRST = SignalPlan(
    "junction:1", 60.0, 0.0, (Phase((("w", "c", 0),), 25.0), Phase((("n", "c", 0),), 25.0))
)


def edge_time(ds, edge: str) -> float:
    """Time the vehicle spent on ``edge`` (s): length over its space-mean speed there."""
    speed = ds["speed"].sel(edge=edge).values
    length = {"c->m#0": 12.0, "m->e#0": 288.0}[edge]
    return length / float(speed[np.isfinite(speed)][0])


def test_a_vehicle_held_alone_loses_its_acceleration_over_the_edges_it_accelerates_on():
    # it reaches the red stop line at t = 30 s, waits until the green at t = 60 s (braking
    # happens inside that wait), then accelerates from standstill at a = 2.6 m/s2: the
    # acceleration distance v2 / 2a = 19.2 m spans the 12 m edge and 7.2 m of the next.
    # 12 m from standstill: sqrt(2 x 12 / a) = 3.04 s (1.2 s cruising), leaving it at
    # sqrt(2 a 12) = 7.90 m/s; the rest of the way to 10 m/s loses (10 - 7.90)2 / (2 a 10) =
    # 0.085 s on the long edge; in all v / 2a = 1.92 s, not v / 2 (1/a + 1/b) = 3.03 s
    g = cross_with_short_exit()
    kw = {"speed_factor_sd": 0.0, "progress": False}
    trip = (Trip("x", "w", "e", 0.0),)
    ds = run(TrafficScenario(g, trips=trip, plans=(W_GREEN_FIRST,), **kw), rng=0)
    t_short = math.sqrt(2 * 12.0 / A)
    u = math.sqrt(2 * A * 12.0)
    assert edge_time(ds, "c->m#0") == pytest.approx(t_short, abs=0.01)
    assert edge_time(ds, "m->e#0") == pytest.approx(28.8 + (V - u) ** 2 / (2 * A * V), abs=0.01)
    assert float(ds["travel_time"].item()) == pytest.approx(60.0 + 30.0 + V / (2 * A), abs=0.05)
    # not held (it arrives in the green): no loss at all
    early = (Trip("y", "w", "e", 35.0),)
    free = run(TrafficScenario(g, trips=early, plans=(W_GREEN_FIRST,), **kw), rng=0)
    assert float(free["travel_time"].item()) == pytest.approx(60.0)


def test_a_standing_queue_discharges_at_saturation_flow_through_a_short_edge():
    # 45 vehicles reach the stop line at t = 100 s, in the red, and stand until the green at
    # t = 120 s; from then on they cross the stop line at 1,800 veh/h, and the 12 m edge after
    # it passes them at that rate: the loss does not throttle the discharge a second time.
    # Each vehicle that stood is a copy of the head's trajectory one jam spacing and one
    # reaction time behind (Newell): all of them, far downstream, are v / 2a = 1.92 s behind
    # where they would be had they crossed the line cruising at their saturation-flow times
    # (the head loses it all after the line, the 6th and later all before).
    g = cross_with_short_exit()
    trips = tuple(Trip(f"v{i:03d}", "w", "e", 70.0 + 0.01 * i) for i in range(45))
    kw = {"speed_factor_sd": 0.0, "progress": False, "spillback": True}
    # the west has green over [0, 100) s of each 120 s cycle
    late = SignalPlan(
        "junction:1", 120.0, 0.0, (Phase((("w", "c", 0),), 100.0), Phase((("n", "c", 0),), 10.0))
    )
    loss = run(TrafficScenario(g, trips=trips, plans=(late,), **kw), rng=0)
    none = run(TrafficScenario(g, trips=trips, plans=(late,), stop_loss=False, **kw), rng=0)
    arr, arr0 = loss["arrive"].values, none["arrive"].values
    assert np.isfinite(arr).all()
    rate = 44 / (arr.max() - arr.min())
    assert rate == pytest.approx(0.5, rel=0.02)
    np.testing.assert_allclose(arr - arr0, V / (2 * A), atol=0.05)


def test_a_vehicle_joining_a_moving_stream_loses_no_start_up():
    # a platoon arriving faster than the stop line discharges, in the green: the lane never
    # stands, so the vehicles held by its capacity lose no start-up time
    g = cross_with_short_exit()
    trips = tuple(Trip(f"v{i:03d}", "w", "e", 0.5 * i) for i in range(30))
    kw = {"speed_factor_sd": 0.0, "progress": False}
    green = SignalPlan(  # the west has green over [0, 100) s
        "junction:1", 120.0, 0.0, (Phase((("w", "c", 0),), 100.0), Phase((("n", "c", 0),), 10.0))
    )
    loss = run(TrafficScenario(g, trips=trips, plans=(green,), **kw), rng=0)
    none = run(TrafficScenario(g, trips=trips, plans=(green,), stop_loss=False, **kw), rng=0)
    held = loss["travel_time"].values > 60.0 + 1.0
    assert held.sum() > 20
    np.testing.assert_allclose(loss["arrive"].values, none["arrive"].values, atol=1e-9)
