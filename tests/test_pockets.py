"""Turn pockets at signalised approaches: the DES lane model, OSM ``turn:lanes`` and the rule.

The DES cases are worked on a cross-roads whose approach from the west shares one green with
the opposing approach from the east: a left turner from the west gives way to the eastern
stream (a permissive left turn), and without a pocket it stands in the only lane.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from twin._errors import InputValidationError
from twin.scenarios.traffic import SignalProgram, TrafficScenario, Trip, run

X0, Y0 = 840_000.0, 6_250_000.0
W, E = ("w", "c", 0), ("e", "c", 0)
W_THRU, W_LEFT, E_THRU = ("c", "e", 0), ("c", "n", 0), ("c", "w", 0)


def cross(**pocket: object) -> nx.MultiDiGraph:
    """Arms of 300 m at 10 m/s, one lane each way; ``pocket`` attributes on the western approach."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    pos = {"c": (0, 0), "n": (0, 300), "e": (300, 0), "s": (0, -300), "w": (-300, 0)}
    for n, (x, y) in pos.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    for n in "nesw":
        for u, v in ((n, "c"), ("c", n)):
            g.add_edge(u, v, length=300.0, speed_kph=36.0, lanes=1, highway="primary")
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
