"""The traffic DES on real twins: Webster plans per junction, scenarios, incidents, SUMO export."""

from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from twin._errors import InputValidationError, UnknownAssetError
from twin.scenarios.demand import ProfileDemand, build_demand
from twin.scenarios.network import (
    REFERENCE_WEEKDAY,
    drive_graph,
    export_twin,
    scenario_from_twin,
    signal_plans,
)
from twin.scenarios.signals import CYCLE_MAX_S, CYCLE_MIN_S, SignalPlan
from twin.scenarios.traffic import Incident, edge_index, run
from twin.sumo import read_sumo_net, sumo_binary

DAY = dt.date(2024, 6, 4)  # a Tuesday


def check_plans(tw, plans) -> None:  # type: ignore[no-untyped-def]
    """Every registry junction is planned or skipped with a reason; plans are safe Webster."""
    from twin.signals.plans import all_red_for, stage_minimums, stage_ratios
    from twin.signals.safety import check_plan

    junctions = tw.registry["junction"]
    app = tw.registry["approach"]
    assert set(plans) | set(plans.skipped) == set(junctions.index)
    assert not set(plans) & set(plans.skipped)
    for reason in plans.skipped.values():
        assert reason
    seen: set = set()
    flows = plans.flows.set_index(["u", "v", "key"])
    for jid, plan in plans.items():
        assert isinstance(plan, SignalPlan)
        assert plan.junction == jid
        assert CYCLE_MIN_S - 1e-6 <= plan.cycle_s <= CYCLE_MAX_S + 1e-6
        model = plans.models[jid]
        assert check_plan(plan, model) == []  # safe on its junction's model
        mine = {(int(r.u), int(r.v), int(r.key)) for r in app[app["junction"] == jid].itertuples()}
        served = set(plan.approaches)
        # and the links inside a cluster run as sub-junctions, each with its own stop line
        inner = {model.group(g).edge for g in model.vehicle_groups if g.startswith("link:")}
        assert not inner or model.parts
        assert all(e[0] in model.nodes and e[1] in model.nodes for e in inner)
        assert served == (mine - set(plans.shared.get(jid, ()))) | inner
        assert not served & seen  # no approach in two plans
        seen |= served
        for phase in plan.phases:
            assert phase.green_s >= plan.min_green_s - 1e-9
        # Webster's formula, recomputed from the flows the plan was built on
        q = {model.group_of_edge(a): flows.loc[a, "flow_pcu_h"] for a in served}
        lanes = {model.group_of_edge(a): int(flows.loc[a, "lanes"]) for a in served}
        y = stage_ratios(model, q, lanes=lanes)
        n, big_y = len(plan.phases), sum(y)
        lost = n * (3.0 + all_red_for(model, model.stages))
        assert plan.all_red_s == pytest.approx(all_red_for(model, model.stages))
        mins = stage_minimums(model)
        if jid in plans.adjusted or big_y >= 1 or big_y == 0:
            continue
        c0 = min(max((1.5 * lost + 5) / (1 - big_y), CYCLE_MIN_S), CYCLE_MAX_S)
        greens = [yi / big_y * (c0 - lost) for yi in y]
        if all(g >= m for g, m in zip(greens, mins, strict=True)):
            assert plan.cycle_s == pytest.approx(c0, rel=1e-9)
            assert [p.green_s for p in plan.phases] == pytest.approx(greens, rel=1e-9)
        else:  # raised to the minimums (a crossing's walk and clearance), the rest by share
            assert all(p.green_s >= m - 1e-9 for p, m in zip(plan.phases, mins, strict=True))


# ---------------------------------------------------------------- plans -----------------------
def test_signal_plans_bondy_cover_every_junction(bondy):
    plans = signal_plans(bondy)
    check_plans(bondy, plans)
    assert len(plans) >= 2
    # the default hour is the busiest of a weekday: an evening or morning peak hour
    assert plans.local_hour in (7, 8, 9, 16, 17, 18)
    assert plans.time == np.datetime64("2024-06-04T15:00")  # 17:00 CEST
    assert "skipped" in plans.summary()
    # a plan is data: it round-trips through JSON
    for plan in plans.values():
        assert SignalPlan.from_dict(plan.to_dict()) == plan


def test_signal_plans_follow_the_flows(bondy):
    peak = signal_plans(bondy, day=DAY)
    night = signal_plans(bondy, day=DAY, hour=3)
    assert night.local_hour == 3
    assert set(night) == set(peak)
    assert (night.flows["flow_pcu_h"] < peak.flows["flow_pcu_h"]).all()
    for jid in peak:  # lighter flows, shorter (or equal, at the 40 s floor) cycles
        assert night[jid].cycle_s <= peak[jid].cycle_s + 1e-9
    check_plans(bondy, night)


def test_signal_plans_on_a_demand_model_take_each_edge_s_equilibrium_flow(bondy):
    import dataclasses

    from twin.scenarios.assignment import assign_hours

    model = build_demand(bondy)
    plans = signal_plans(bondy, day=DAY, model=model)
    check_plans(bondy, plans)
    assert plans.local_hour == 17  # the busiest hour of the weekday car profile
    asg = assign_hours(bondy, hours=(17,), model=model, rgap_target=1e-3)
    by_edge = dict(zip(drive_graph(bondy).edges(keys=True), asg["flow"].values[0], strict=True))
    for row in plans.flows.itertuples():  # each direction its own flow, not half the street's
        assert row.flow_pcu_h == pytest.approx(by_edge[(row.u, row.v, row.key)])
    # the same model with a third of the trips: lighter flows, cycles no longer
    light = dataclasses.replace(
        model, params=dataclasses.replace(model.params, trip_rate=model.params.trip_rate / 3)
    )
    low = signal_plans(bondy, day=DAY, model=light)
    assert low.flows["flow_pcu_h"].sum() < 0.5 * plans.flows["flow_pcu_h"].sum()
    assert all(low[j].cycle_s <= plans[j].cycle_s + 1e-9 for j in plans)
    with pytest.raises(InputValidationError, match="not both"):
        signal_plans(bondy, model=model, demand=ProfileDemand.from_twin(bondy))


def test_signal_plans_bad_hour(bondy):
    with pytest.raises(InputValidationError, match="hour"):
        signal_plans(bondy, hour=24)
    with pytest.raises(InputValidationError, match="clock change"):
        signal_plans(bondy, day="2024-03-31", hour=2)  # 02:00 does not exist that day


def test_drive_graph_lanes_per_direction(bondy):
    g = drive_graph(bondy)
    assert g.number_of_edges() == bondy.drive.number_of_edges()
    for u, v, k, d in g.edges(keys=True, data=True):
        src = bondy.graph.edges[u, v, k]
        assert d["lanes"] == src["lanes_dir"]
        assert d["segment"] == src["segment"]
    assert pickle.loads(pickle.dumps(g)).number_of_edges() == g.number_of_edges()


# ---------------------------------------------------------------- scenarios -------------------
def test_scenario_from_twin_is_the_twins_demand(bondy):
    sc = scenario_from_twin(bondy, day=DAY, hours=(7, 9), rng=5)
    # t0 is 07:00 local (CEST, UTC+2)
    assert sc.t0 == dt.datetime(2024, 6, 4, 5, 0, tzinfo=dt.UTC)
    frame = build_demand(bondy).trips(day_type="weekday", rng=np.random.default_rng(5), day=DAY)
    inside = frame[(frame["depart_s"] >= 7 * 3600) & (frame["depart_s"] < 9 * 3600)]
    assert len(sc.trips) == len(inside) > 100
    assert [t.origin_node for t in sc.trips] == inside["origin"].tolist()
    assert [t.depart_s for t in sc.trips] == pytest.approx(inside["depart_s"] - 7 * 3600)
    assert all(0 <= t.depart_s < 7200 for t in sc.trips)
    assert {p.junction for p in sc.plans} == set(signal_plans(bondy, day=DAY, hour=8))
    nodes = set(sc.graph.nodes)
    assert all(t.origin_node in nodes and t.dest_node in nodes for t in sc.trips)

    small = scenario_from_twin(bondy, day=DAY, hours=(7, 9), rng=5, max_trips=50)
    assert len(small.trips) == 50
    assert [t.depart_s for t in small.trips] == sorted(t.depart_s for t in small.trips)


def test_scenario_window_on_a_dst_day(bondy):
    sc = scenario_from_twin(bondy, day="2024-03-31", hours=(1, 4), rng=1)
    # 01:00 CET is 00:00 UTC; 04:00 CEST is 02:00 UTC: the window lasts two real hours
    assert sc.t0 == dt.datetime(2024, 3, 31, 0, 0, tzinfo=dt.UTC)
    assert max(t.depart_s for t in sc.trips) < 7200


def test_scenario_runs_pickled_and_gives_flows(bondy):
    sc = scenario_from_twin(bondy, day=DAY, hours=(8, 9), rng=2, progress=False)
    back = pickle.loads(pickle.dumps(sc))
    ds = run(sc, rng=3)
    ds2 = run(back, rng=3)
    np.testing.assert_array_equal(ds["travel_time"].values, ds2["travel_time"].values)
    assert ds.attrs["n_dropped"] == 0
    assert ds.attrs["n_unfinished"] == 0
    assert ds.sizes["trip"] == len(sc.trips)
    flow = ds["flow"]
    assert flow.attrs["units"] == "veh/h"
    busy = (flow.sum("time") > 0).values
    assert busy.sum() > 0.3 * ds.sizes["edge"]
    # every trip enters at least one edge: vehicles entering >= trips
    entered = float((flow * ds.attrs["slot_s"] / 3600.0).sum())
    assert entered >= len(sc.trips)
    # edges are labelled by segment, approaches by junction
    assert set(ds["edge"].values) <= set(bondy.registry["segment"].index)
    assert set(ds["junction"].values) == {p.junction for p in sc.plans}
    assert np.isfinite(ds["delay"].values).any()
    assert (ds["delay"].values[np.isfinite(ds["delay"].values)] >= 0).all()


def busiest_segment(sc, ds):
    """The segment of the busiest edge of a run, and the run's indices of all its edges."""
    seg = str(ds["edge"].values[int(np.argmax(ds["flow"].sum("time").values))])
    idx = edge_index(sc.graph)
    return seg, [i for (u, v, k), i in idx.items() if sc.graph.edges[u, v, k]["segment"] == seg]


def test_incident_on_a_segment_closes_its_edges(bondy):
    base_sc = scenario_from_twin(bondy, day=DAY, hours=(8, 10), rng=2, progress=False)
    base = run(base_sc, rng=3)
    idx = edge_index(base_sc.graph)
    seg, closed = busiest_segment(base_sc, base)
    sc = scenario_from_twin(
        bondy,
        day=DAY,
        hours=(8, 10),
        rng=2,
        progress=False,
        incidents=[Incident(seg, lanes_closed=9, start_s=600.0, end_s=3600.0)],
    )
    assert {i.edge[:2] for i in sc.incidents} == {
        (u, v) for (u, v, k), i in idx.items() if i in closed
    }
    ds = run(sc, rng=3)
    # a closed street takes no vehicle, not even a head held past max_blocked_s: those
    # routed through it before the closure go round it or wait, until it reopens
    during = {"time": slice(1, 4)}
    assert float(base["flow"].isel(edge=closed, **during).sum()) > 0
    assert float(ds["flow"].isel(edge=closed, **during).sum()) == 0.0
    assert float(ds["flow"].isel(edge=closed, time=slice(5, 8)).sum()) > 0  # reopened
    assert ds["travel_time"].mean() >= base["travel_time"].mean() * 0.99


def test_incident_from_the_start_is_routed_around_at_once(bondy):
    base_sc = scenario_from_twin(bondy, day=DAY, hours=(8, 9), rng=2, progress=False)
    base = run(base_sc, rng=3)
    seg, closed = busiest_segment(base_sc, base)
    sc = scenario_from_twin(
        bondy,
        day=DAY,
        hours=(8, 9),
        rng=2,
        progress=False,
        incidents=[Incident(seg, lanes_closed=9, start_s=0.0, end_s=3600.0)],
    )
    ds = run(sc, rng=3)
    assert float(base["flow"].isel(edge=closed, time=0).sum()) > 0
    assert float(ds["flow"].isel(edge=closed).sum()) == 0.0


def test_incident_on_an_unknown_segment(bondy):
    with pytest.raises(UnknownAssetError, match="segment:999999"):
        scenario_from_twin(
            bondy, day=DAY, hours=(8, 9), incidents=[Incident("segment:999999", 1, 0.0, 60.0)]
        )
    with pytest.raises(UnknownAssetError, match="edge"):
        scenario_from_twin(bondy, day=DAY, hours=(8, 9), incidents=[Incident((1, 2, 0), 1, 0, 9)])


def test_scenario_bad_input(bondy):
    with pytest.raises(InputValidationError, match="hours"):
        scenario_from_twin(bondy, day=DAY, hours=(9, 7))
    with pytest.raises(InputValidationError, match="day_type"):
        scenario_from_twin(bondy, day=DAY, day_type="holiday")
    with pytest.raises(InputValidationError, match="max_trips"):
        scenario_from_twin(bondy, day=DAY, max_trips=0)
    with pytest.raises(InputValidationError, match="day"):
        scenario_from_twin(bondy, day="2024-13-01")


# ---------------------------------------------------------------- SUMO export -----------------
def test_export_twin_runs_in_sumo(bondy, tmp_path: Path):
    n = export_twin(bondy, tmp_path, hours=(8, 9))
    sc = scenario_from_twin(bondy, day=REFERENCE_WEEKDAY, hours=(8, 9), rng=2018)
    assert n == len(sc.trips) > 100
    routes = ET.parse(tmp_path / "twin.rou.xml").getroot()
    assert len(routes.findall("trip")) == n
    tls = ET.parse(tmp_path / "twin.tls.add.xml").getroot()
    plans = signal_plans(bondy, day=REFERENCE_WEEKDAY, hour=8)
    assert {el.get("id") for el in tls.iter("tlLogic")} == set(plans)
    for el in tls.iter("tlLogic"):
        cycle = sum(float(p.get("duration")) for p in el.iter("phase"))
        assert cycle == pytest.approx(plans[el.get("id")].cycle_s, abs=0.05)
    graph, _ = read_sumo_net(tmp_path / "twin.net.xml")
    # the strongly connected part of the drive network (and the signalised approaches)
    assert 0.8 * bondy.drive.number_of_edges() < graph.number_of_edges()
    assert graph.number_of_edges() <= bondy.drive.number_of_edges()
    assert set(graph.graph["junctions"]) == set(plans)
    # SUMO (meso) runs the written configuration and every trip arrives
    out = tmp_path / "tripinfo.xml"
    res = subprocess.run(
        [
            sumo_binary("sumo"),
            "-c",
            str(tmp_path / "twin.sumocfg"),
            "--mesosim",
            "--no-step-log",
            "--no-warnings",
            "--tripinfo-output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert len(ET.parse(out).getroot().findall("tripinfo")) == n


# ---------------------------------------------------------------- Montpellier -----------------
@pytest.mark.slow
def test_montpellier_plans_and_a_morning_half_hour(montpellier):
    plans = signal_plans(montpellier)
    check_plans(montpellier, plans)
    assert len(plans) > 0.8 * len(montpellier.registry["junction"])
    sc = scenario_from_twin(
        montpellier, day=DAY, hours=(8, 8.5), rng=4, max_trips=6000, progress=False
    )
    assert len(sc.trips) == 6000
    assert len(sc.plans) > 300
    ds = run(sc, rng=4)
    assert ds.attrs["n_unfinished"] == 0
    assert ds.attrs["n_dropped"] < 0.01 * len(sc.trips)
    assert (ds["flow"].sum("time") > 0).sum() > 2000
    delay = ds["delay"].values
    assert np.isfinite(delay).sum() > 300
