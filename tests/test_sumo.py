"""Tests of the SUMO reader and writer (they run the real SUMO binaries from eclipse-sumo)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import networkx as nx
import numpy as np
import pytest

from twin._errors import DataMissingError, InputValidationError
from twin.scenarios.signals import Phase, SignalPlan
from twin.scenarios.traffic import TrafficScenario, Trip, run
from twin.sumo import export_sumo, import_sumo, read_sumo_net, read_sumo_routes, sumo_binary

X0, Y0 = 655_000.0, 6_860_000.0


def grid(n: int = 3, spacing: float = 150.0) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for i in range(n):
        for j in range(n):
            g.add_node(f"n{i}{j}", x=X0 + i * spacing, y=Y0 + j * spacing)
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < n and j + dj < n:
                    a, b = f"n{i}{j}", f"n{i + di}{j + dj}"
                    for u, v in ((a, b), (b, a)):
                        g.add_edge(
                            u,
                            v,
                            length=spacing + 0.5 * (i + j),
                            speed_kph=50.0,
                            lanes=1 + (j == 1),
                            highway="secondary",
                            name=f"rue {i}{j}",
                        )
    return g


def centre_plan() -> SignalPlan:
    ns = (("n10", "n11", 0), ("n12", "n11", 0))
    ew = (("n01", "n11", 0), ("n21", "n11", 0))
    return SignalPlan("J1", 60.0, 7.0, (Phase(ns, 27.0), Phase(ew, 23.0)))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    g = grid()
    out = tmp_path_factory.mktemp("sumo")
    route = (("n00", "n10", 0), ("n10", "n11", 0), ("n11", "n21", 0), ("n21", "n22", 0))
    trips = [Trip("r0", "n00", "n22", 5.0, route)]
    trips += [Trip(f"t{i}", "n00", "n22", float(i)) for i in range(10)]
    paths = export_sumo(
        g, out_dir=out, trips=trips, plans=[centre_plan()], junctions={"J1": ["n11"]}
    )
    return g, paths, trips


def test_round_trip_topology_lengths_crs(written):
    g, paths, _ = written
    back, signals = read_sumo_net(paths["net"])
    assert back.graph["crs"] == "EPSG:2154"
    assert back.number_of_edges() == g.number_of_edges()
    assert set(back.edges(keys=True)) == set(g.edges(keys=True))
    for u, v, k, d in g.edges(keys=True, data=True):
        e = back.edges[u, v, k]
        assert e["length"] == pytest.approx(d["length"], abs=0.01)
        assert e["speed_kph"] == pytest.approx(d["speed_kph"], abs=0.01)
        assert e["lanes"] == d["lanes"]
    for n, d in g.nodes(data=True):
        assert back.nodes[n]["x"] == pytest.approx(d["x"], abs=0.01)
        assert back.nodes[n]["y"] == pytest.approx(d["y"], abs=0.01)
    # the net itself holds netconvert's default program; ours is in the additional file
    assert set(signals) == {"J1"}
    assert back.graph["junctions"]["J1"] == ["n11"]


def test_written_files_run_in_sumo(written, tmp_path):
    _, paths, trips = written
    tripinfo = tmp_path / "tripinfo.xml"
    res = subprocess.run(
        [
            sumo_binary("sumo"),
            "-n",
            str(paths["net"]),
            "-r",
            str(paths["routes"]),
            "--no-step-log",
            "--tripinfo-output",
            str(tripinfo),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert tripinfo.read_text().count("<tripinfo ") == len(trips)
    # and with our plan loaded as the active program
    res = subprocess.run(
        [sumo_binary("sumo"), "-c", str(paths["config"]), "--no-step-log"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    tls = paths["tls"].read_text()
    assert 'programID="twin"' in tls
    assert 'offset="7.00"' in tls
    assert 'duration="27.00"' in tls
    assert 'duration="23.00"' in tls


def test_plan_written_reads_back_as_the_same_plan(written, tmp_path):
    _, paths, _ = written
    # merge our program into the net, as a user would, and read it back
    merged = tmp_path / "merged.net.xml"
    res = subprocess.run(
        [
            sumo_binary("netconvert"),
            "-s",
            str(paths["net"]),
            "-i",
            str(paths["tls"]),
            "-o",
            str(merged),
            "--offset.disable-normalization",
            "true",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    _, signals = read_sumo_net(merged)
    plan, ours = signals["J1"], centre_plan()
    assert plan.cycle_s == pytest.approx(ours.cycle_s)
    assert plan.offset_s == pytest.approx(ours.offset_s)
    assert [set(p.approaches) for p in plan.phases] == [set(p.approaches) for p in ours.phases]
    assert [p.green_s for p in plan.phases] == pytest.approx([27.0, 23.0])
    assert (plan.amber_s, plan.all_red_s) == (3.0, 2.0)


def test_import_routes_and_run_des(written):
    _, paths, trips = written
    graph, signals, back = import_sumo(paths["net"], paths["routes"])
    by_id = {t.id: t for t in back}
    assert len(back) == len(trips)
    assert by_id["r0"].route == trips[0].route
    assert by_id["t3"].route is None
    assert by_id["t3"].depart_s == 3.0
    assert by_id["t3"].origin_node == "n00"
    ds = run(
        TrafficScenario(graph, trips=tuple(back), plans=tuple(signals.values()), progress=False),
        rng=0,
    )
    assert ds.attrs["n_unfinished"] == 0
    assert np.all(ds["travel_time"].values > 0)


def test_vehroute_of_a_rerouted_vehicle_reads_its_driven_route(written, tmp_path):
    # SUMO's --vehroute-output writes a vehicle that changed route as a routeDistribution whose
    # last route is the one driven
    _, paths, trips = written
    graph, _, back = import_sumo(paths["net"], paths["routes"])
    root = ET.parse(paths["routes"]).getroot()
    edges = next(v for v in root.iter("vehicle") if v.get("id") == "r0").find("route").get("edges")
    first = edges.split()[0]
    vehroute = tmp_path / "vehroutes.xml"
    vehroute.write_text(
        f'<routes><vehicle id="v" depart="2.00"><routeDistribution last="1">'
        f'<route replacedOnEdge="{first}" replacedAtTime="2.00" edges="{first}"/>'
        f'<route edges="{edges}"/></routeDistribution></vehicle></routes>'
    )
    (trip,) = read_sumo_routes(vehroute, graph)
    assert trip.route == trips[0].route and trip.depart_s == 2.0
    vehroute.write_text('<routes><vehicle id="w" depart="0"/></routes>')
    with pytest.raises(InputValidationError, match="vehicle 'w' has no route"):
        read_sumo_routes(vehroute, graph)


def test_netgenerate_grid_with_signals(tmp_path):
    net = tmp_path / "g.net.xml"
    subprocess.run(
        [
            sumo_binary("netgenerate"),
            "--grid",
            "--grid.number=4",
            "--grid.length=100",
            "--default.lanenumber=2",
            "--default.speed=13.89",
            "-o",
            str(net),
        ],
        check=True,
        capture_output=True,
    )
    tls_net = tmp_path / "t.net.xml"
    subprocess.run(
        [sumo_binary("netconvert"), "-s", str(net), "--tls.set", "B1,C2", "-o", str(tls_net)],
        check=True,
        capture_output=True,
    )
    g, signals = read_sumo_net(tls_net)
    assert g.graph["crs"] == "local metric"
    assert g.number_of_edges() == 48  # 2 x 4 x 3 x 2
    assert set(signals) == {"B1", "C2"}
    plan = signals["B1"]
    assert len(plan.phases) >= 2
    assert 40 <= plan.cycle_s <= 120
    served = set(plan.approaches)
    assert served == {(u, v, k) for u, v, k in g.in_edges("B1", keys=True)}


def test_errors_name_the_problem(tmp_path, written):
    with pytest.raises(DataMissingError, match="does not exist"):
        read_sumo_net(tmp_path / "nope.net.xml")
    g, paths, _ = written
    bad = tmp_path / "bad.rou.xml"
    bad.write_text('<routes><vehicle id="v" depart="0"><route edges="zz"/></vehicle></routes>')
    graph, _ = read_sumo_net(paths["net"])
    with pytest.raises(InputValidationError, match="edge 'zz' is not in the network"):
        read_sumo_routes(bad, graph)


def test_a_held_link_waits_its_stage_with_amber_before(written, tmp_path):
    """A link held for one stage (where it and another would yield to each other on a common
    yielding green) shows red through that stage and amber at the end of the stage before."""
    from twin.sumo import _mutual_minor_greens, _tl_links, _write_tls

    g, paths, _ = written
    links = _tl_links(paths["net"], ["J1"])["J1"]
    plan = centre_plan()
    ids = {(u, v, k): f"{u}_{v}_{k}" for u, v, k in g.edges(keys=True)}
    ns = {ids[a] for a in plan.phases[0].approaches}
    # a north-south link, green in stage 0, held in stage 1 (where it is red anyway) and 0
    i = next(i for i, lk in sorted(links.items()) if lk.edge in ns)
    out = tmp_path / "held.tls.add.xml"
    _write_tls({"J1": links}, [plan], ids, out, hold={"J1": {0: {i}}})
    states = [ph.get("state", "") for ph in ET.parse(out).getroot().iter("phase")]
    assert len(states) == 6  # green, amber, all-red per stage
    assert [s[i] for s in states] == ["r", "r", "r", "r", "r", "r"]
    _write_tls({"J1": links}, [plan], ids, out, hold={"J1": {1: {i}}})
    states = [ph.get("state", "") for ph in ET.parse(out).getroot().iter("phase")]
    # green in stage 0, amber at its end, then red; the others as without a hold
    assert states[0][i] in "Gg" and states[1][i] == "y" and states[2][i] == "r"
    _write_tls({"J1": links}, [plan], ids, out)
    free = [ph.get("state", "") for ph in ET.parse(out).getroot().iter("phase")]
    assert [s[:i] + s[i + 1 :] for s in states] == [s[:i] + s[i + 1 :] for s in free]
    # the written net has no pair of links that yield to each other on a common green
    assert _mutual_minor_greens(paths["net"]) == []
