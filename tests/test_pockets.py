"""Turn pockets at signalised approaches: the DES lane model, OSM ``turn:lanes`` and the rule.

The DES cases are worked on a cross-roads whose approach from the west shares one green with
the opposing approach from the east: a left turner from the west gives way to the eastern
stream (a permissive left turn), and without a pocket it stands in the only lane.
"""

from __future__ import annotations

import logging
from pathlib import Path

import graphs
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from graphs import X0, Y0

from twin._errors import InputValidationError
from twin.derive.pockets import (
    LEFT_POCKET_VEH_H,
    RIGHT_POCKET_VEH_H,
    STORAGE_MIN_M,
    VEHICLE_SPACING_M,
    pockets,
)
from twin.derive.segments import segments
from twin.scenarios.traffic import SignalProgram, TrafficScenario, Trip, run

W, E = ("w", "c", 0), ("e", "c", 0)
W_THRU, W_LEFT, E_THRU = ("c", "e", 0), ("c", "n", 0), ("c", "w", 0)


def cross(**pocket: object) -> nx.MultiDiGraph:
    """Arms of 300 m at 10 m/s, one lane each way; ``pocket`` attributes on the western approach."""
    g = graphs.cross()
    g.edges[E]["lanes"] = 2  # the opposing approach: two lanes
    g.edges[W].update(pocket)
    return g


def program() -> SignalProgram:
    """East-west green [0, 50) s of a 60 s cycle, the western left turn permissive in it."""
    green = ((0.0, 50.0),)
    moves = ((W, W_THRU, green), (W, W_LEFT, green), (E, E_THRU, green))
    return SignalProgram("junction:c", 60.0, 0.0, moves)


def trips(n_left: int) -> tuple[Trip, ...]:
    """A heavy opposing stream (2,400 veh/h from the east) and, from the west, one vehicle
    every 6 s, the first ``n_left`` of every ten of them turning left.

    Across 2,400 veh/h a left turn's gap-acceptance capacity is
    ``3600 / 2.2 * exp(-2400 * (4.1 - 1.1) / 3600) = 221`` veh/h, so each left turner uses
    ``1800 / 221 = 8.1`` vehicles' worth (16 s) of its lane's green.
    """
    out = [Trip(f"e{i}", "e", "w", 1.5 * i) for i in range(800)]
    for i in range(100):
        left = i % 10 < n_left
        out.append(Trip(f"{'l' if left else 't'}{i}", "w", "n" if left else "e", 6.0 * i))
    return tuple(out)


def through_times(ds: object, *, n_left: int = 3) -> np.ndarray:
    tt = ds["travel_time"]  # type: ignore[index]
    ids = [t.id for t in trips(n_left) if t.id.startswith("t")]
    return np.asarray(tt.sel(trip=ids).values, dtype=float)


def scenario(g: nx.MultiDiGraph, n_left: int = 3, **kw: object) -> TrafficScenario:
    return TrafficScenario(  # type: ignore[arg-type]
        g, trips=trips(n_left), programs=(program(),), speed_factor_sd=0.0, progress=False, **kw
    )


def test_left_turner_holds_through_traffic_without_a_pocket_not_with_one() -> None:
    plain = run(scenario(cross()), rng=1)
    pocket = run(scenario(cross(pocket_left=1, pocket_left_m=30.0)), rng=1)
    t_plain, t_pocket = through_times(plain), through_times(pocket)
    # three left turners a minute use 48 s of the lane's 50 s green: without a pocket the
    # through vehicles queue behind them, far above the free 60 s plus the mean red wait
    # (10 s x 10/60 ~ 1 s)
    assert np.nanmean(t_plain) > 100.0
    # with the pocket the left turners wait beside them: through traffic only sees its red
    assert np.nanmean(t_pocket) < 65.0
    assert np.isfinite(t_pocket).all()
    # the left turners still wait for their gaps, in the pocket
    lefts = [f"l{i}" for i in range(100) if i % 10 < 3]
    assert float(pocket["travel_time"].sel(trip=lefts).mean()) > 65.0


def test_discharge_of_the_approach_is_higher_with_a_pocket() -> None:
    # the 70 through vehicles from the west depart by 594 s and reach the line 30 s later: by
    # 660 s all of them are through with a pocket, a fifth of them still queue without one
    ds0 = run(scenario(cross(), duration_s=660.0), rng=1)
    ds1 = run(scenario(cross(pocket_left=1, pocket_left_m=30.0), duration_s=660.0), rng=1)
    done0 = int(np.isfinite(through_times(ds0)).sum())
    done1 = int(np.isfinite(through_times(ds1)).sum())
    assert done1 == 70
    assert done0 <= 60


def test_a_full_pocket_spills_back_into_the_through_lane() -> None:
    # four left turners a minute (64 s of a 50 s green): a pocket for one car overflows and
    # its queue holds the through lane; one for eight stores them for the 600 s of demand
    one = run(scenario(cross(pocket_left=1, pocket_left_m=7.5), n_left=4), rng=1)
    eight = run(scenario(cross(pocket_left=1, pocket_left_m=60.0), n_left=4), rng=1)
    t_one, t_eight = through_times(one, n_left=4), through_times(eight, n_left=4)
    assert np.nanmean(t_one) > np.nanmean(t_eight) + 30.0
    assert np.nanmean(t_eight) < 65.0


def test_without_pockets_the_lane_model_is_unchanged() -> None:
    # a pocket of zero lanes is no pocket: the same run to the last vehicle
    a = run(scenario(cross()), rng=3)
    b = run(scenario(cross(pocket_left=0, pocket_left_m=0.0, pocket_right=0)), rng=3)
    np.testing.assert_array_equal(a["travel_time"].values, b["travel_time"].values)


def test_the_pockets_switch_off_runs_as_if_the_graph_had_none() -> None:
    # the same graph with its pocket attributes, run with the switch off: the run without them
    a = run(scenario(cross()), rng=3)
    b = run(scenario(cross(pocket_left=1, pocket_left_m=30.0, lanes_line=2), pockets=False), rng=3)
    np.testing.assert_array_equal(a["travel_time"].values, b["travel_time"].values)


@pytest.mark.parametrize(
    ("attrs", "field"),
    [
        ({"pocket_left": -1}, "pocket_left"),
        ({"pocket_left": 9, "pocket_left_m": 30.0}, "pocket_left"),
        ({"pocket_left": 1}, "pocket_left_m"),
        ({"pocket_right": 1, "pocket_right_m": -5.0}, "pocket_right_m"),
    ],
)
def test_bad_pocket_attributes_name_the_edge(attrs: dict[str, object], field: str) -> None:
    with pytest.raises(InputValidationError, match=field):
        run(scenario(cross(**attrs)), rng=1)


# ---- OSM turn:lanes ------------------------------------------------------------------------


def osm_cross(**west: object) -> nx.MultiDiGraph:
    """A cross-roads of OSM ways of 150 m round node 0 (arms 1 west, 2 north, 3 east, 4 south);
    ``west`` tags on the western way (a one-way street into the junction when it has
    ``oneway``)."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    arms = {1: (-150.0, 0.0), 2: (0.0, 150.0), 3: (150.0, 0.0), 4: (0.0, -150.0)}
    g.add_node(0, x=X0, y=Y0)
    for n, (dx, dy) in arms.items():
        g.add_node(n, x=X0 + dx, y=Y0 + dy)
        tags: dict[str, object] = {"osmid": 100 + n, "highway": "secondary", "length": 150.0}
        if n == 1:
            tags.update(west)
        g.add_edge(n, 0, reversed=False, **tags)
        if not tags.get("oneway"):
            g.add_edge(0, n, reversed=True, **tags)
    return g


def west_approach(g: nx.MultiDiGraph) -> pd.DataFrame:
    junction = pd.DataFrame({"id": ["junction:0"], "nodes": ["0"]})
    approach = pd.DataFrame(
        [
            {"id": f"approach:0.{i}", "junction": "junction:0", "u": n, "v": 0, "key": 0}
            for i, n in enumerate((1, 2, 3, 4))
        ]
    )
    return pockets(g, junction, approach)


def test_turn_lanes_with_more_lanes_at_the_line_give_an_osm_pocket() -> None:
    g = osm_cross(oneway=True, lanes="2", **{"turn:lanes": "left|through|through;right"})
    seg = segments(g)
    west = seg[seg["osmid"] == "101"].iloc[0]
    assert west["lanes_forward"] == 2  # the way's lanes are its lanes tag, not turn:lanes'
    out = west_approach(g).set_index("u")
    row = out.loc[1]
    assert (row["pocket_left"], row["pocket_right"], row["pocket_source"]) == (1, 0, "osm")
    assert row["pocket_left_m"] == STORAGE_MIN_M
    assert out.loc[3, "pocket_source"] == "none"  # no tag, no count
    e = g.edges[1, 0, 0]
    assert (e["pocket_left"], e["lanes_line"], e["pocket_source"]) == (1, 3, "osm")


def test_forward_and_backward_turn_lanes_each_serve_their_direction() -> None:
    g = osm_cross(
        lanes="2", **{"turn:lanes:forward": "left|through", "turn:lanes:backward": "through"}
    )
    segments(g)
    out = west_approach(g).set_index("u")
    assert out.loc[1, "pocket_left"] == 1  # forward: towards the junction, one lane + pocket
    assert g.edges[0, 1, 0]["turn_lanes"] == "through"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("|".join(["through"] * 9), "has 9 lanes, not 1-8"),
        ("left|thru", "unknown turn value 'thru'"),
        ("left;sideways|through", "unknown turn value 'sideways'"),
    ],
)
def test_bad_turn_lanes_are_reported_with_the_segment(
    value: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    g = osm_cross(oneway=True, **{"turn:lanes": value})
    with caplog.at_level(logging.WARNING):
        seg = segments(g)
    sid = seg[seg["osmid"] == "101"]["id"].iloc[0]
    issues = [i for i in g.graph["lane_issues"] if "turn:lanes" in i]
    assert len(issues) == 1
    assert issues[0].startswith(f"{sid} of way 101") and says in issues[0]
    assert says in caplog.text
    # set aside, not read: class default lanes, and no pocket from it
    assert seg[seg["osmid"] == "101"]["lanes_source"].iloc[0] == "default"
    assert west_approach(g).set_index("u").loc[1, "pocket_source"] == "none"


def test_a_lane_count_of_zero_or_above_eight_is_reported_with_the_segment() -> None:
    for bad in ("0", "9"):
        g = osm_cross(oneway=True, lanes=bad, **{"turn:lanes": "left|through"})
        seg = segments(g)
        sid = seg[seg["osmid"] == "101"]["id"].iloc[0]
        assert any(i.startswith(sid) and f"lanes={bad!r}" in i for i in g.graph["lane_issues"])


# ---- the inference rule --------------------------------------------------------------------


def counted_cross(
    aadt: dict[int, float], lengths: dict[int, float] | None = None
) -> nx.MultiDiGraph:
    """Municipal-like cross-roads (no lane tags): arm ``n``'s approach counted ``aadt[n]``."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    arms = {1: (-1.0, 0.0), 2: (0.0, 1.0), 3: (1.0, 0.0), 4: (0.0, -1.0)}
    g.add_node(0, x=X0, y=Y0)
    for n, (dx, dy) in arms.items():
        length = (lengths or {}).get(n, 200.0)
        g.add_node(n, x=X0 + dx * length, y=Y0 + dy * length)
        tags = {"osmid": 100 + n, "highway": "primary", "length": length, "street_type": "BD"}
        if n in aadt:
            tags["aadt"] = aadt[n]
        g.add_edge(n, 0, reversed=False, **tags)
        g.add_edge(0, n, reversed=True, **tags)
    return g


def test_the_rule_gives_a_left_pocket_where_the_counted_peak_warrants_it() -> None:
    # peak hours (12% of the count): 1,440 (west), 720 (north), 1,440 on a 25 m arm (east)
    g = counted_cross({1: 12000.0, 2: 6000.0, 3: 12000.0}, lengths={3: 25.0})
    segments(g)
    out = west_approach(g).set_index("u")
    west = out.loc[1]
    # 10% of 1,440 veh/h turn left: 144 > 100 veh/h; twice the 3.6 of a 90 s cycle: 8 cars
    assert west["left_turn_veh_h"] == pytest.approx(0.10 * 0.12 * 12000.0)
    assert (west["pocket_left"], west["pocket_left_m"]) == (1, 60.0)
    assert (west["pocket_source"], west["turn_flow_source"]) == (
        "inferred",
        "count x default share",
    )
    assert west["pocket_right"] == 0  # 144 veh/h right: below 300
    assert out.loc[2, "pocket_source"] == "none"  # 72 veh/h left
    assert out.loc[2, "left_turn_veh_h"] == pytest.approx(72.0)
    assert out.loc[3, "pocket_source"] == "none"  # no room on 25 m
    assert np.isnan(out.loc[4, "left_turn_veh_h"])  # not counted: nothing inferred
    assert g.edges[1, 0, 0]["pocket_left"] == 1 and "pocket_left" not in g.edges[2, 0, 0]


def test_no_left_exit_no_left_pocket() -> None:
    g = counted_cross({1: 12000.0})
    g.remove_edge(0, 2)  # north arm: one-way towards the junction; no exit to the left
    segments(g)
    west = west_approach(g).set_index("u").loc[1]
    assert west["left_turn_veh_h"] == 0.0 and west["pocket_source"] == "none"


def test_given_turning_flows_replace_the_default_share() -> None:
    g = counted_cross({1: 5000.0})
    segments(g)
    junction = pd.DataFrame({"id": ["junction:0"], "nodes": ["0"]})
    approach = pd.DataFrame(
        [{"id": "approach:0.0", "junction": "junction:0", "u": 1, "v": 0, "key": 0}]
    )
    out = pockets(g, junction, approach, turn_flows={(1, 0, 0): (350.0, 40.0, 400.0)})
    row = out.iloc[0]
    assert (row["pocket_left"], row["turn_flow_source"]) == (2, "given")


def test_montpellier_counted_signalised_approaches_get_inferred_pockets(montpellier) -> None:  # type: ignore[no-untyped-def]
    from twin.scenarios.network import drive_graph

    app = montpellier.registry["approach"]
    # the municipal data has no turn:lanes: every pocket is inferred from a count
    assert set(app["pocket_source"]) <= {"inferred", "none"}
    has = app[app["pocket_left"] + app["pocket_right"] > 0]
    assert 0 < len(has) < len(app)
    assert (has["pocket_source"] == "inferred").all()
    left = has["pocket_left"] > 0
    assert (has.loc[left, "left_turn_veh_h"] > LEFT_POCKET_VEH_H).all()
    assert (has.loc[~left, "right_turn_veh_h"] > RIGHT_POCKET_VEH_H).all()
    # at least two cars where the edge is short (the pocket cut to fit with its taper)
    assert (has.loc[left, "pocket_left_m"] >= 2 * VEHICLE_SPACING_M).all()
    g = drive_graph(montpellier)
    for _, a in has.iterrows():
        e = g.edges[int(a["u"]), int(a["v"]), int(a["key"])]
        assert (e["pocket_left"], e["pocket_left_m"]) == (a["pocket_left"], a["pocket_left_m"])


# ---- SUMO export ---------------------------------------------------------------------------


def test_sumo_export_carries_a_left_pocket_as_an_extra_lane(tmp_path: Path) -> None:
    import subprocess
    import xml.etree.ElementTree as ET

    from twin.sumo import POCKET_UPSTREAM, read_sumo_routes, sumo_binary, write_sumo

    g = cross(pocket_left=1, pocket_left_m=30.0, lanes_line=2)
    for n in g.nodes:
        g.nodes[n]["x"] -= X0  # a local frame, as netconvert normalises none
        g.nodes[n]["y"] -= Y0
    route_l, route_t = (W, W_LEFT), (W, W_THRU)
    trips = [Trip(f"l{i}", "w", "n", 4.0 * i, route_l) for i in range(5)]
    trips += [Trip(f"t{i}", "w", "e", 4.0 * i + 2.0, route_t) for i in range(5)]
    paths = write_sumo(g, out_dir=tmp_path, trips=trips)
    net = ET.parse(paths["net"]).getroot()
    lanes = {e.get("id"): len(e.findall("lane")) for e in net.iter("edge") if not e.get("function")}
    assert lanes["w_c_0"] == 2 and lanes[f"w_c_0{POCKET_UPSTREAM}"] == 1
    up = next(e for e in net.iter("edge") if e.get("id") == "w_c_0")
    assert sum(float(ln.get("length")) for ln in up.findall("lane")[:1]) < 35.0
    # netconvert's lane use: the left turn from the pocket alone, the through movement not
    conn = {
        (c.get("to"), c.get("fromLane")) for c in net.iter("connection") if c.get("from") == "w_c_0"
    }
    assert ("c_n_0", "1") in conn and ("c_n_0", "0") not in conn
    assert ("c_e_0", "0") in conn and ("c_e_0", "1") not in conn
    # SUMO drives the routes, and they read back as the twin's edges
    out = tmp_path / "vehroutes.xml"
    res = subprocess.run(
        [
            sumo_binary("sumo"),
            "-c",
            str(paths["config"]),
            "--no-step-log",
            "--no-warnings",
            "--vehroute-output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    g.graph["sumo_edge_ids"] = {f"{u}_{v}_{k}": (u, v, k) for u, v, k in g.edges(keys=True)}
    back = {t.id: t.route for t in read_sumo_routes(out, g)}
    assert back == {t.id: t.route for t in trips}
