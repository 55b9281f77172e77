"""Per-movement green, long imported cycles and per-movement queues of the traffic DES.

Unit cases worked by hand on a cross-roads, then networks made by SUMO's own generators
(``netgenerate --rand`` and ``--spider``, not the grid the DES was first compared on), run by
SUMO micro with the same routes and signal programs.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from twin._errors import InputValidationError
from twin.scenarios.signals import Phase, SignalPlan
from twin.scenarios.traffic import SignalProgram, TrafficScenario, Trip, run
from twin.sumo import import_sumo, read_signal_programs, read_sumo_net, sumo_binary

X0, Y0 = 840_000.0, 6_250_000.0


def cross(lanes: int = 1) -> nx.MultiDiGraph:
    """Arms of 300 m at 10 m/s: a vehicle from an arm end reaches the stop line at t + 30 s."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    pos = {"c": (0, 0), "n": (0, 300), "e": (300, 0), "s": (0, -300), "w": (-300, 0)}
    for n, (x, y) in pos.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    for n in "nesw":
        for u, v in ((n, "c"), ("c", n)):
            g.add_edge(u, v, length=300.0, speed_kph=36.0, lanes=lanes, highway="primary")
    return g


W, THRU, RIGHT = ("w", "c", 0), ("c", "e", 0), ("c", "s", 0)  # from the west: east is ahead


def program(cycle_s: float = 60.0) -> SignalProgram:
    # through from the west green [0, 25) s; its right turn green in both stages, [0, 55) s
    return SignalProgram(
        "junction:c", cycle_s, 0.0, ((W, THRU, ((0.0, 25.0),)), (W, RIGHT, ((0.0, 55.0),)))
    )


def sc(g: nx.MultiDiGraph, trips: tuple[Trip, ...], **kw: object) -> TrafficScenario:
    return TrafficScenario(g, trips=trips, speed_factor_sd=0.0, progress=False, **kw)  # type: ignore[arg-type]


def test_green_is_per_movement_not_per_approach() -> None:
    # both reach the stop line at 30 s: the right turn is green, the through movement red until
    # the next cycle at 60 s (then 30 s on, plus the stop: more than 85 s in all)
    g = cross()
    right = run(sc(g, (Trip("r", "w", "s", 0.0),), programs=(program(),)))
    thru = run(sc(g, (Trip("t", "w", "e", 0.0),), programs=(program(),)))
    assert right["travel_time"].item() == pytest.approx(60.0)
    assert thru["travel_time"].item() > 85.0
    # as a plan per approach, the approach counts as green while any of its movements is
    plan = SignalPlan("junction:c", 60.0, 0.0, (Phase((W,), 55.0),))
    as_plan = run(sc(g, (Trip("t", "w", "e", 0.0),), plans=(plan,)))
    assert as_plan["travel_time"].item() == pytest.approx(60.0)
    # the routing cost reads the movements' mean green, not the approach's best
    assert program().green_ratio(W, THRU) == pytest.approx(25 / 60)


def test_programs_keep_long_cycles_and_check_their_input() -> None:
    g = cross()
    long = program(cycle_s=150.0)  # a plan the twin designs stays within 40-120 s; this is kept
    thru = run(sc(g, (Trip("t", "w", "e", 40.0),), programs=(long,)))
    # ready at 70 s, red from 25 to 150 s: it leaves at the next green, 150 s
    assert thru["travel_time"].item() > 150.0 - 40.0 + 30.0
    with pytest.raises(InputValidationError, match=r"cycle_s"):
        SignalPlan("junction:c", 150.0, 0.0, (Phase((W,), 140.0),))
    with pytest.raises(InputValidationError, match=r"SignalProgram\(j\).cycle_s: 0"):
        SignalProgram("j", 0.0, 0.0, ())
    with pytest.raises(InputValidationError, match=r"window \(50, 70\)"):
        SignalProgram("j", 60.0, 0.0, ((W, THRU, ((50.0, 70.0),)),))
    bad = SignalProgram(
        "j", 60.0, 0.0, ((W, ("c", "w", 0), ((0.0, 20.0),)), (W, ("e", "c", 0), ((0.0, 20.0),)))
    )
    with pytest.raises(InputValidationError, match=r"does not lead into \('e', 'c', 0\)"):
        run(sc(g, (Trip("t", "w", "e", 0.0),), programs=(bad,)))
    plan = SignalPlan("junction:p", 60.0, 0.0, (Phase((W,), 55.0),))
    with pytest.raises(InputValidationError, match="served by junction 'junction:p'"):
        run(sc(g, (Trip("t", "w", "e", 0.0),), plans=(plan,), programs=(program(),)))


LEFT = ("c", "n", 0)  # from the west, north is to the left


@pytest.mark.parametrize(
    ("lanes", "multi", "through_first", "passes"),
    [(2, True, True, "l"), (2, True, False, "r"), (2, False, True, ""), (1, True, True, "")],
)
def test_a_vehicle_held_for_its_movement_holds_only_its_lane(
    lanes: int, multi: bool, through_first: bool, passes: str
) -> None:
    # the through vehicle ahead waits for the next green (60 s); the left and right turners
    # behind it are green. On two lanes the right turn uses the kerb lane, the left turn the
    # other, the through vehicle either: it drives in one (the first of its lanes for the first
    # vehicle of the scenario, the second for the second) and holds the turner of that lane
    # only, the other goes at once (60 s). One lane, or one queue: both wait behind it.
    g = cross(lanes=lanes)
    windows = ((W, THRU, ((0.0, 25.0),)), (W, RIGHT, ((0.0, 55.0),)), (W, LEFT, ((0.0, 55.0),)))
    prog = SignalProgram("junction:c", 60.0, 0.0, windows)
    t, lt, rt = Trip("t", "w", "e", 0.0), Trip("l", "w", "n", 1.0), Trip("r", "w", "s", 2.0)
    trips = (t, lt, rt) if through_first else (lt, t, rt)
    ds = run(sc(g, trips, programs=(prog,), multi_queue=multi))
    tt = ds["travel_time"].to_series()
    assert tt["t"] > 85.0
    for turn in "lr":
        if turn == passes:
            assert tt[turn] == pytest.approx(60.0)
        else:
            assert tt[turn] > 80.0, turn
    # nobody is lost or reordered on the edges downstream
    assert ds.attrs["n_unfinished"] == 0


@pytest.mark.parametrize("multi", [True, False])
def test_a_turn_served_by_one_lane_discharges_at_one_lanes_rate(multi: bool) -> None:
    # 20 vehicles reach the stop line of a two-lane arm that is always green, all at about
    # 30 s: through vehicles use both lanes (3,600 veh/h), the last leaves about 17 s after the
    # first; right turners have the kerb lane alone (1,800 veh/h), 36 s. With one queue
    # (multi_queue off) the edge's 3,600 veh/h serve either alike. (The lanes never stand:
    # each discharges a moving stream from its first vehicle on, so no start-up is lost.)
    g = cross(lanes=2)
    always = ((0.0, 60.0),)
    prog = SignalProgram("junction:c", 60.0, 0.0, ((W, THRU, always), (W, RIGHT, always)))
    spread = {}
    for to in "es":
        trips = tuple(Trip(f"v{i}", "w", to, 0.05 * i) for i in range(20))
        ds = run(sc(g, trips, programs=(prog,), multi_queue=multi, dt_s=0.5))
        assert ds.attrs["n_unfinished"] == 0
        tt = ds["travel_time"].values
        spread[to] = float(tt.max() - tt.min())
    assert spread["e"] == pytest.approx(17.0, abs=1.5)
    assert spread["s"] == pytest.approx(36.0 if multi else 17.0, abs=1.5)


def test_multi_queue_keeps_every_vehicle_under_load() -> None:
    # 400 vehicles over 10 minutes from every arm to every other: all arrive, each once
    g = cross(lanes=2)
    rng = np.random.default_rng(5)
    arms = list("nesw")
    trips = []
    for i in range(400):
        o, d = rng.choice(4, 2, replace=False)
        trips.append(Trip(f"v{i}", arms[o], arms[d], float(rng.uniform(0, 600))))
    movements = []
    for a in arms:
        for b in arms:
            if a != b:
                start = 0.0 if a in "ns" else 30.0
                movements.append(((a, "c", 0), ("c", b, 0), ((start, start + 25.0),)))
    prog = SignalProgram("junction:c", 60.0, 0.0, tuple(movements))
    ds = run(sc(g, tuple(trips), programs=(prog,)), rng=1)
    assert ds.sizes["trip"] == 400
    assert ds.attrs["n_unfinished"] == 0
    assert np.isfinite(ds["arrive"].values).all()
    # the first vehicles to reach the stop line on a green leave at once (60 s in all)
    assert float(ds["travel_time"].min()) == pytest.approx(60.0)


# ------------------------------------------------------------- SUMO generators -----------------
SEED = 20240611
NETS = {
    "rand": [
        "--rand",
        "--rand.iterations=120",
        "--rand.min-distance=120",
        "--rand.max-distance=300",
    ],
    "spider": [
        "--spider",
        "--spider.arm-number=8",
        "--spider.circle-number=5",
        "--spider.space-radius=150",
    ],
}


def _sh(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    assert res.returncode == 0, res.stderr[-2000:]


def _case(tmp: Path, name: str, n_trips: int, *extra: str) -> tuple[Path, Path]:
    import sumo

    net = tmp / f"{name}.net.xml"
    _sh(
        [
            sumo_binary("netgenerate"),
            *NETS[name],
            "--default.lanenumber=2",
            "--default.speed=13.89",
            "--tls.guess",
            "--tls.default-type=static",
            *extra,
            f"--seed={SEED}",
            "-o",
            str(net),
        ],
        tmp,
    )
    period = 3600.0 / n_trips
    trips, routes = tmp / f"{name}.trips.xml", tmp / f"{name}.rou.xml"
    tools = Path(sumo.SUMO_HOME) / "tools"
    _sh(
        [
            sys.executable,
            str(tools / "randomTrips.py"),
            "-n",
            str(net),
            "-e",
            f"{3600.0 - period / 2:.4f}",
            "-p",
            f"{period:.6f}",
            "--fringe-factor",
            "5",
            "--min-distance",
            "300",
            "--seed",
            str(SEED),
            "-o",
            str(trips),
            "-r",
            str(tmp / f"{name}.random.rou.xml"),
        ],
        tmp,
    )
    _sh(
        [
            sumo_binary("duarouter"),
            "-n",
            str(net),
            "-r",
            str(trips),
            "-o",
            str(routes),
            "--ignore-errors",
            "--no-step-log",
            "--seed",
            str(SEED),
        ],
        tmp,
    )
    return net, routes


def _sumo_micro(tmp: Path, net: Path, routes: Path) -> np.ndarray:
    info = tmp / f"{net.stem}.tripinfo.xml"
    _sh(
        [
            sumo_binary("sumo"),
            "-n",
            str(net),
            "-r",
            str(routes),
            "--no-step-log",
            "true",
            "--no-warnings",
            "true",
            "--tripinfo-output",
            str(info),
            "--seed",
            str(SEED),
        ],
        tmp,
    )
    return np.array([float(e.get("duration")) for e in ET.parse(info).getroot().iter("tripinfo")])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rand", "spider"])
def test_trips_match_sumo_micro_on_generated_networks(tmp_path: Path, name: str) -> None:
    # 1,500 trips in an hour, SUMO's routes and signal programs: mean trip time within 6% of
    # SUMO micro (measured at 3,000 trips: rand +0.7%, spider +3.2% with a queue per lane;
    # -2.7% and +0.6% with one per movement; before the per-movement green, rand was -12.7%)
    net, routes = _case(tmp_path, name, 1500)
    graph, _, trips = import_sumo(net, routes)
    programs = read_signal_programs(net, graph)
    assert programs
    ds = run(
        TrafficScenario(
            graph, trips=tuple(trips), programs=tuple(programs.values()), progress=False
        ),
        rng=SEED,
    )
    micro = _sumo_micro(tmp_path, net, routes)
    assert ds.attrs["n_unfinished"] == 0
    assert ds.sizes["trip"] == micro.size == len(trips)
    ratio = float(ds["travel_time"].mean()) / float(micro.mean())
    assert abs(ratio - 1) < 0.06, ratio


@pytest.mark.slow
def test_a_long_imported_cycle_is_kept(tmp_path: Path) -> None:
    net, routes = _case(tmp_path, "spider", 300, "--tls.cycle.time=150")
    graph, plans = read_sumo_net(net)
    programs = read_signal_programs(net, graph)
    assert not plans  # no 40-120 s plan fits a 150 s program
    assert programs and {p.cycle_s for p in programs.values()} == {150.0}
    graph, _, trips = import_sumo(net, routes)
    ds = run(
        TrafficScenario(
            graph, trips=tuple(trips), programs=tuple(programs.values()), progress=False
        ),
        rng=SEED,
    )
    micro = _sumo_micro(tmp_path, net, routes)
    ratio = float(ds["travel_time"].mean()) / float(micro.mean())
    assert abs(ratio - 1) < 0.10, ratio
