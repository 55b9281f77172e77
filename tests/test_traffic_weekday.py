"""Tests of a weekday in the traffic DES: routes on given link times, routing round spillback,
teleports counted, link-time agreement with the assignment, and the weekday report."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from calibration_folders import calibration_folder

from twin._errors import InputValidationError
from twin.cli import main
from twin.scenarios.traffic import Incident, TrafficScenario, Trip, edge_index, run

X0, Y0 = 840_000.0, 6_250_000.0


def two_roads(short: float = 1000.0, long: float = 1400.0) -> nx.MultiDiGraph:
    """``a -> b`` directly (``short`` m) or through ``c`` (``long`` m in all)."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    g.add_node("a", x=X0, y=Y0)
    g.add_node("b", x=X0 + short, y=Y0)
    g.add_node("c", x=X0 + short / 2, y=Y0 + 400.0)
    kw = {"speed_kph": 36.0, "lanes": 1, "highway": "primary"}
    g.add_edge("a", "b", length=short, **kw)
    g.add_edge("a", "c", length=long / 2, **kw)
    g.add_edge("c", "b", length=long / 2, **kw)
    return g


def _edges_used(ds, name: str) -> float:  # type: ignore[no-untyped-def]
    return float(ds["flow"].sel(edge=name).sum())


def test_trips_follow_the_given_link_times_of_their_departure_period():
    # before 600 s the direct road is cheap; from 600 s on the given times make it dear, so
    # the trips departing then go round by c (the DES's own times would keep them direct)
    g = two_roads()
    idx = edge_index(g)
    cheap = np.ones(3)
    dear = np.ones(3)
    dear[idx[("a", "b", 0)]] = 1000.0
    trips = tuple(Trip(f"t{i}", "a", "b", float(60 * i)) for i in range(20))
    kw = {"speed_factor_sd": 0.0, "progress": False, "slot_s": 600.0, "reroute_s": 60.0}
    ds = run(TrafficScenario(g, trips=trips, routing_times=((0.0, cheap), (600.0, dear)), **kw))
    tt = ds["travel_time"].to_series()
    early = tt[[f"t{i}" for i in range(10)]]
    late = tt[[f"t{i}" for i in range(10, 20)]]
    assert np.allclose(early, 100.0)  # 1,000 m at 10 m/s
    assert np.allclose(late, 140.0)  # 1,400 m
    # without given times every trip takes the direct road
    own = run(TrafficScenario(g, trips=trips, **kw))
    assert np.allclose(own["travel_time"], 100.0)


def test_routing_times_are_checked():
    g = two_roads()
    trips = (Trip("t", "a", "b", 0.0),)
    with pytest.raises(InputValidationError, match=r"routing_times\[1\]: start"):
        TrafficScenario(g, trips=trips, routing_times=((0.0, np.ones(3)), (0.0, np.ones(3))))
    with pytest.raises(InputValidationError, match=r"routing_times\[0\]: the link times"):
        TrafficScenario(g, trips=trips, routing_times=((0.0, np.array([1.0, -1.0, 1.0])),))
    sc = TrafficScenario(g, trips=trips, routing_times=((0.0, np.ones(2)),), progress=False)
    with pytest.raises(InputValidationError, match="2 link times for 3 graph edges"):
        run(sc)


def test_routes_go_round_a_queue_held_by_spillback():
    # a -> b -> d -> e -> f with d -> e closed: b -> d fills, then the queue on a -> b is held
    # by it, not by its own capacity. Trips from a to d routed later go round by c (1,400 m) when
    # routing sees that queue drain at what it discharges (nothing), and join it when routing
    # counts the edge's capacity
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for n, (x, y) in {
        "a": (0, 0),
        "b": (150, 0),
        "d": (180, 0),
        "e": (210, 0),
        "c": (90, 400),
    }.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    kw_e = {"speed_kph": 36.0, "lanes": 1, "highway": "primary"}
    for u, v, length in (("a", "b", 150.0), ("b", "d", 30.0), ("d", "e", 30.0), ("e", "f", 30.0)):
        g.add_edge(u, v, length=length, **kw_e)
    g.add_edge("a", "c", length=700.0, **kw_e)
    g.add_edge("c", "d", length=700.0, **kw_e)
    stuck = ("a", "b", 0), ("b", "d", 0), ("d", "e", 0), ("e", "f", 0)
    trips = [Trip(f"s{i}", "a", "f", float(i), route=stuck) for i in range(30)]
    trips += [Trip(f"t{i}", "a", "d", 300.0 + 10 * i) for i in range(10)]
    inc = (Incident(("d", "e", 0), 1, 0.0, 5000.0),)
    kw = {
        "speed_factor_sd": 0.0,
        "progress": False,
        "reroute_s": 60.0,
        "max_blocked_s": 3000.0,
        "duration_s": 8000.0,
    }
    seen = run(TrafficScenario(g, trips=tuple(trips), incidents=inc, **kw), rng=0)
    blind = run(
        TrafficScenario(g, trips=tuple(trips), incidents=inc, route_on_discharge=False, **kw),
        rng=0,
    )
    late = [f"t{i}" for i in range(10)]
    assert np.allclose(seen["travel_time"].sel(trip=late), 140.0)  # round by c, 1,400 m
    assert (blind["travel_time"].sel(trip=late) > 1000.0).all()  # behind the held queue


def test_heads_forced_into_a_full_edge_are_counted():
    # 0 -> 1 -> 2 -> 3, 1 -> 2 15 m long (storage 2) and 2 -> 3 closed: 1 -> 2 fills, the heads
    # of 0 -> 1 wait for room, and each is let in after max_blocked_s (SUMO's teleport), which
    # the run counts per edge; none is let into the closed edge itself
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for i, x in enumerate((0.0, 200.0, 215.0, 415.0)):
        g.add_node(i, x=X0 + x, y=Y0)
    g.add_edge(0, 1, length=200.0, speed_kph=36.0, lanes=1, highway="primary")
    g.add_edge(1, 2, length=15.0, speed_kph=36.0, lanes=1, highway="primary")
    g.add_edge(2, 3, length=200.0, speed_kph=36.0, lanes=1, highway="primary")
    route = ((0, 1, 0), (1, 2, 0), (2, 3, 0))
    trips = tuple(Trip(f"v{i}", 0, 3, float(i), route=route) for i in range(6))
    inc = (Incident((2, 3, 0), 1, 0.0, 1000.0),)
    kw = {"speed_factor_sd": 0.0, "progress": False, "max_blocked_s": 100.0}
    ds = run(TrafficScenario(g, trips=trips, incidents=inc, **kw), rng=0)
    # 2 fill 1 -> 2; the other 4 are forced in one by one, 100 s apart, before 2 -> 3 reopens
    assert ds.attrs["n_forced"] == 4
    assert int(ds["forced"].sel(edge="0->1#0")) == 4
    assert int(ds["forced"].sum()) == 4
    assert ds.attrs["n_unfinished"] == 0
    none = run(TrafficScenario(g, trips=trips, incidents=inc, spillback=False, **kw), rng=0)
    assert none.attrs["n_forced"] == 0


def test_link_time_agreement_compares_like_with_like():
    import xarray as xr

    from twin.scenarios.weekday import link_time_agreement

    length = np.array([100.0, 200.0])
    speed = np.array([[10.0, 10.0], [10.0, 5.0]])  # DES: 10 s and 20 s, then 10 s and 40 s
    flow = np.array([[100.0, 100.0], [100.0, 10.0]])
    ds = xr.Dataset(
        {"speed": (("edge", "time"), speed), "flow": (("edge", "time"), flow)},
        coords={"length": ("edge", length)},
        attrs={"slot_s": 3600.0},
    )
    times = ((0.0, np.array([10.0, 20.0])), (3600.0, np.array([10.0, 20.0])))
    a = link_time_agreement(ds, times, min_vehicles=30)
    assert a["edge_hours"].tolist() == [2, 1]  # 10 vehicles in the second hour: left out
    assert a["median_ratio"].tolist() == [1.0, 1.0]
    assert a["share_within"].tolist() == [1.0, 1.0]
    b = link_time_agreement(ds, times, min_vehicles=5)
    assert b["edge_hours"].tolist() == [2, 2]
    assert b["share_within"].tolist() == [1.0, 0.5]  # 40 s against 20 s is outside 25%
    ds.attrs["slot_s"] = 900.0
    with pytest.raises(InputValidationError, match="one-hour slots"):
        link_time_agreement(ds, times)


@pytest.mark.slow
def test_weekday_report_from_the_cli(bondy, tmp_path, capsys):
    out = tmp_path / "weekday"
    code = main(["traffic", "weekday", "--city", "bondy", "--out", str(out), "--share", "0.2"])
    assert code == 0
    report = json.loads((out / "weekday.json").read_text())
    f = report["figures"]
    assert f["trips"] > 1000
    assert f["finished_by_end"] >= 0.99
    assert 0.0 <= f["finished_by_midnight"] <= f["finished_by_end"]
    assert f["forced"] >= 0 and f["rtf"] > 0
    for name in ("trips_by_hour.csv", "vc.csv", "vc_08h.png", "vc_17h.png", "assignment.csv"):
        assert (out / name).stat().st_size > 0
    assert "finished by midnight" in capsys.readouterr().out
    saturday = ["traffic", "weekday", "--city", "bondy", "--out", str(tmp_path / "sat")]
    assert main([*saturday, "--date", "2024-06-08"]) == 2
    assert "2024-06-08 is not a weekday" in capsys.readouterr().err


@pytest.mark.slow
def test_the_weekday_runs_without_its_turn_pockets_from_the_cli(montpellier, tmp_path, capsys):
    from twin.scenarios.drive import drive_graph

    graph = drive_graph(montpellier)
    has = sum(
        1 for *_, d in graph.edges(data=True) if d.get("pocket_left", 0) or d.get("pocket_right", 0)
    )
    assert has > 100  # Montpellier's signalised approaches carry inferred pockets
    modelled = {}
    for name, extra in (("with", []), ("without", ["--no-pockets"])):
        out = tmp_path / name
        argv = ["traffic", "weekday", "--city", "montpellier", "--out", str(out)]
        assert main([*argv, "--share", "0.02", "--hours", "8", "9", *extra]) == 0
        modelled[name] = json.loads((out / "weekday.json").read_text())["figures"]["pocket_edges"]
    assert modelled == {"with": has, "without": 0}
    printed = capsys.readouterr().out
    assert f"turn pockets on {has:,} approaches" in printed
    assert "turn pockets on 0 approaches" in printed


def test_weekday_cli_names_a_bad_share(tmp_path, capsys):
    code = main(
        ["traffic", "weekday", "--city", "bondy", "--out", str(tmp_path / "o"), "--share", "0"]
    )
    assert code == 2
    assert "--share" in capsys.readouterr().err


@pytest.mark.slow
def test_weekday_window_runs_the_day_s_trips_of_its_hours(bondy):
    from twin.scenarios.demand import build_demand
    from twin.scenarios.weekday import simulate_weekday

    gen = np.random.default_rng(5)
    drawn = build_demand(bondy).trips(day_type="weekday", rng=gen)
    drawn = drawn[gen.random(len(drawn)) < 0.2]
    in_window = int(drawn["depart_s"].between(7 * 3600.0, 10 * 3600.0, inclusive="left").sum())
    win = simulate_weekday(
        bondy, share=0.2, routing="dynamic", hours=(7, 10), extra_h=1.0, snapshots_h=(8, 9), rng=5
    )
    f = win.figures
    # the same draw of the day, cut to its departures from 07:00 to 10:00
    assert f["trips"] == in_window
    assert list(win.by_hour.index) == [7, 8, 9]
    assert f["hours"] == [7.0, 10.0]
    assert f["simulated_s"] <= 4 * 3600.0
    assert [s["hour"] for s in f["snapshots"]] == [8, 9]
    assert all(s["on_road"] > 0 for s in f["snapshots"])
    assert list(win.vc.columns) == [8]
    assert 0 < f["finished_by_window_end"] <= f["finished_by_midnight"]
    with pytest.raises(InputValidationError, match="hours"):
        simulate_weekday(bondy, share=0.2, hours=(10, 7))


def test_the_weekday_runs_the_demand_a_calibration_wrote(bondy, tmp_path, capsys):
    from twin.scenarios.calibration import load_calibrated_model

    factor = calibration_folder(bondy, tmp_path / "cal", trip_rate=1.85)
    model = load_calibrated_model(bondy, tmp_path / "cal")
    assert (model.params.trip_rate, model.params.beta_per_min) == (1.85, 0.2)
    assert model.params.external_share == 0.1
    assert np.array_equal(model.od_factor, factor)
    # from the CLI: half the default trip rate (3.7) draws about half the trips
    runs = {}
    for name, extra in (("default", []), ("calibrated", ["--calibration", str(tmp_path / "cal")])):
        out = tmp_path / name
        argv = ["traffic", "weekday", "--city", "bondy", "--out", str(out), "--share", "0.05"]
        assert main([*argv, "--hours", "7", "9", *extra]) == 0
        runs[name] = json.loads((out / "weekday.json").read_text())["figures"]["trips_drawn"]
    assert "demand calibrated by" in capsys.readouterr().out
    assert 0.3 < runs["calibrated"] / runs["default"] < 0.6


def test_a_calibration_folder_that_does_not_fit_is_refused(bondy, montpellier, tmp_path):
    from twin.scenarios.calibration import load_calibrated_model

    with pytest.raises(InputValidationError, match=r"calibration\.json: no such file"):
        load_calibrated_model(bondy, tmp_path / "none")
    calibration_folder(bondy, tmp_path / "cal", trip_rate=3.0)
    with pytest.raises(InputValidationError, match="city 'bondy' is not the twin's"):
        load_calibrated_model(montpellier, tmp_path / "cal")
    # the OD factors of other zones (another cell size)
    report = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    (tmp_path / "cal" / "calibration.json").write_text(json.dumps({**report, "cell_m": 250.0}))
    with pytest.raises(InputValidationError, match=r"od_factor\.npy: .*shape"):
        load_calibrated_model(bondy, tmp_path / "cal")
    for key, value, match in (
        ("cell_m", None, "cell_m None is not a zone cell size"),
        ("params", {"trip_rate": float("nan")}, "params.trip_rate nan"),
    ):
        (tmp_path / "cal" / "calibration.json").write_text(json.dumps({**report, key: value}))
        with pytest.raises(InputValidationError, match=match):
            load_calibrated_model(bondy, tmp_path / "cal")
    (tmp_path / "cal" / "calibration.json").write_text("{not json")
    with pytest.raises(InputValidationError, match="cannot be read as JSON"):
        load_calibrated_model(bondy, tmp_path / "cal")
