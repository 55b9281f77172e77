"""Static user-equilibrium assignment: hand-worked equilibria, convergence, bad input, and the
cross-check against AequilibraE (a reference implementation from PyPI) on a real network."""

from __future__ import annotations

import logging
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from scipy import optimize

from twin._errors import InputValidationError
from twin.scenarios.assignment import BPR, AssignmentNetwork, assign, bpr_time


def parallel(lengths: tuple[float, ...], highway: str = "primary") -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    g.add_nodes_from([(0, {"x": 0.0, "y": 0.0}), (1, {"x": 1000.0, "y": 0.0})])
    for length in lengths:
        g.add_edge(0, 1, length=length, speed_kph=36.0, lanes_dir=1, highway=highway)
    return g


def grid(n: int = 6, spacing: float = 200.0) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for i in range(n):
        for j in range(n):
            g.add_node((i, j), x=i * spacing, y=j * spacing)
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < n and j + dj < n:
                    a, b = (i, j), (i + di, j + dj)
                    hw = "secondary" if j in (0, n - 1) else "residential"
                    for u, v in ((a, b), (b, a)):
                        g.add_edge(u, v, length=spacing, speed_kph=50.0, lanes_dir=1, highway=hw)
    return g


def beckmann(net: AssignmentNetwork, x: np.ndarray) -> float:
    """Beckmann's objective: the sum over links of the integral of the BPR time, 0 to x."""
    b = net.beta
    integral = net.t0_s * (x + net.alpha * x ** (b + 1) / ((b + 1) * net.capacity_veh_h**b))
    return float(integral.sum())


def test_two_routes_equilibrium_worked_by_root_finding() -> None:
    # 1,500 veh/h over two roads of 1,000 m and 1,300 m at 10 m/s: 100 s and 130 s free;
    # primary: alpha 1, beta 4, 900 veh/h per lane. Wardrop: t1(x) = t2(1500 - x).
    alpha, beta, cap = BPR["primary"]
    net = AssignmentNetwork.from_graph(parallel((1000.0, 1300.0)))

    def diff(x: float) -> float:
        return 100 * (1 + alpha * (x / cap) ** beta) - 130 * (
            1 + alpha * ((1500 - x) / cap) ** beta
        )

    x1 = optimize.brentq(diff, 0.0, 1500.0, xtol=1e-10)
    res = assign(net, np.array([[0.0, 1500.0], [0.0, 0.0]]), (0, 1), rgap_target=1e-9)
    assert res.converged
    assert res.flow_veh_h[0] == pytest.approx(x1, rel=1e-5)
    assert res.flow_veh_h.sum() == pytest.approx(1500.0)
    assert res.time_s[0] == pytest.approx(res.time_s[1], rel=1e-6)
    # light demand stays on the shortest road (the longer one is never worth it)
    light = assign(net, np.array([[0.0, 100.0], [0.0, 0.0]]), (0, 1))
    assert light.flow_veh_h.tolist() == pytest.approx([100.0, 0.0])


def test_bpr_and_classes() -> None:
    assert (
        float(
            bpr_time(
                np.array([10.0]),
                np.array([0.0]),
                np.array([900.0]),
                np.array([1.0]),
                np.array([4.0]),
            )[0]
        )
        == 10.0
    )
    net = AssignmentNetwork.from_graph(parallel((1000.0,), highway="motorway"))
    assert (net.alpha[0], net.beta[0], net.capacity_veh_h[0]) == (0.15, 4.0, 1800.0)
    assert (
        AssignmentNetwork.from_graph(parallel((1000.0,), highway="service")).capacity_veh_h[0]
        == 600.0
    )


@pytest.mark.parametrize("algorithm", ["fw", "cfw", "bfw"])
def test_every_algorithm_reaches_the_same_equilibrium(algorithm: str) -> None:
    g = grid()
    net = AssignmentNetwork.from_graph(g)
    corners = [(0, 0), (5, 0), (0, 5), (5, 5), (2, 3)]
    rng = np.random.default_rng(3)
    od = rng.uniform(100, 400, (5, 5))
    ref = assign(net, od, corners, rgap_target=1e-5, max_iter=5000, algorithm="bfw")
    res = assign(net, od, corners, rgap_target=1e-4, max_iter=5000, algorithm=algorithm)  # type: ignore[arg-type]
    assert res.converged and ref.converged
    # flows on lightly loaded links are hardly pinned down at a gap of 1e-4 (their cost barely
    # depends on them, so equal-cost routes over a grid share them in many ways); the link
    # times and Beckmann's objective are
    np.testing.assert_allclose(res.time_s, ref.time_s, rtol=0.01)
    assert beckmann(net, res.flow_veh_h) == pytest.approx(beckmann(net, ref.flow_veh_h), rel=1e-4)
    assert res.gaps[-1] == res.rgap <= 1e-4


def test_bfw_needs_fewer_iterations_than_fw() -> None:
    net = AssignmentNetwork.from_graph(grid())
    corners = [(0, 0), (5, 0), (0, 5), (5, 5)]
    od = np.full((4, 4), 600.0)
    fw = assign(net, od, corners, rgap_target=1e-4, max_iter=5000, algorithm="fw")
    bfw = assign(net, od, corners, rgap_target=1e-4, max_iter=5000, algorithm="bfw")
    assert bfw.iterations < fw.iterations


def test_not_converging_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    net = AssignmentNetwork.from_graph(grid())
    corners = [(0, 0), (5, 5)]
    with caplog.at_level(logging.WARNING):
        res = assign(
            net, np.array([[0.0, 3000.0], [3000.0, 0.0]]), corners, max_iter=2, rgap_target=1e-6
        )
    assert not res.converged
    assert res.iterations == 2 and res.rgap > 1e-6
    assert "not converged" in caplog.text and f"{res.rgap:.2e}" in caplog.text


def test_bad_input_names_the_field() -> None:
    net = AssignmentNetwork.from_graph(parallel((1000.0,)))
    with pytest.raises(
        InputValidationError, match="demand_veh_h: -1.0 veh/h from zone 0 to zone 1"
    ):
        assign(net, np.array([[0.0, -1.0], [0.0, 0.0]]), (0, 1))
    with pytest.raises(InputValidationError, match=r"demand_veh_h: shape \(1, 1\) is not \(2, 2\)"):
        assign(net, np.zeros((1, 1)), (0, 1))
    with pytest.raises(InputValidationError, match="zone_nodes: 7 is not a node"):
        assign(net, np.zeros((2, 2)), (0, 7))
    with pytest.raises(InputValidationError, match="algorithm"):
        assign(net, np.zeros((2, 2)), (0, 1), algorithm="msa")  # type: ignore[arg-type]
    g = parallel((1000.0,))
    g.edges[0, 1, 0]["length"] = 0.0
    with pytest.raises(InputValidationError, match=r"graph edge \(0, 1, 0\): length 0.0 m"):
        AssignmentNetwork.from_graph(g)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
def test_same_flows_as_aequilibrae_on_bondy(bondy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Bondy's drive network and its demand model's 08:00 matrix, scaled up 6 times so that
    # the streets congest; both at a relative gap of 1e-6. AequilibraE is run by the
    # benchmark's own function, so the test and the benchmark compare the same thing.
    from twin.scenarios.network import drive_graph
    from twin.scenarios.zones import build_demand

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from assignment_vs_aequilibrae import aequilibrae_flows

    model = build_demand(bondy)
    ok = np.flatnonzero(model.reachable)
    od = 6.0 * model.od(32, day_type="weekday")[np.ix_(ok, ok)]
    zones = [model.zone_node[i] for i in ok]
    net = AssignmentNetwork.from_graph(drive_graph(bondy))
    ours = assign(net, od, zones, rgap_target=1e-6, max_iter=5000)
    assert ours.converged and ours.iterations > 3  # congested: not a single all-or-nothing

    theirs, gap, _, _ = aequilibrae_flows(net, od, zones, gap=1e-6)
    assert gap <= 1e-6
    loaded = np.maximum(theirs, ours.flow_veh_h) > 0.01 * od.sum()
    assert loaded.sum() > 20
    rel = np.abs(ours.flow_veh_h - theirs)[loaded] / theirs[loaded]
    assert rel.max() < 0.01, rel.max()


def test_peak_hours_of_bondy(bondy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import xarray as xr

    from twin.scenarios.assignment import assign_hours

    ds = assign_hours(bondy, hours=(8, 17), rgap_target=1e-4)
    assert ds["converged"].all() and (ds["rgap"] <= 1e-4).all()
    assert ds["flow"].dims == ("hour", "edge") and (ds["flow"] >= 0).all()
    assert float(ds["flow"].sel(hour=17).sum()) > float(ds["flow"].sel(hour=8).sum()) > 0
    np.testing.assert_allclose(ds["vc"], ds["flow"] / ds["capacity"])
    assert ds.attrs["local_timezone"] == bondy.city.timezone
    ds.to_netcdf(tmp_path / "a.nc")
    xr.testing.assert_identical(xr.load_dataset(tmp_path / "a.nc"), ds)
    from twin._errors import InputValidationError

    with pytest.raises(InputValidationError, match="hours"):
        assign_hours(bondy, hours=(25,))


def test_not_converging_on_a_real_network_is_marked(bondy, caplog) -> None:  # type: ignore[no-untyped-def]
    # Bondy's 17:00 weekday demand six times over (so that streets congest), two iterations
    # for a gap of 1e-6: not an equilibrium
    from twin.scenarios.assignment import assign_hours
    from twin.scenarios.zones import build_demand

    model = build_demand(bondy)
    model = model.with_params(trip_rate=6.0 * model.params.trip_rate)
    with caplog.at_level(logging.WARNING):
        ds = assign_hours(bondy, hours=(17,), model=model, rgap_target=1e-6, max_iter=2)
    gap = float(ds["rgap"].sel(hour=17))
    assert not bool(ds["converged"].sel(hour=17))
    assert int(ds["iterations"].sel(hour=17)) == 2 and gap > 1e-6
    assert f"relative gap {gap:.2e} after 2 iterations" in caplog.text
    assert "not converged" in caplog.text


def test_zones_loaded_over_several_nodes() -> None:
    # a cross-roads, one path between any two arm ends: zone 0 loads at n (1/4) and w (3/4),
    # zone 1 at e; zone 0's trips to itself go between n and w in the shares 1/4 * 3/4 each
    # way, the rest (n to n, w to w) stays put
    from graphs import cross

    from twin.scenarios.gravity import ZoneLoading

    net = AssignmentNetwork.from_graph(cross())
    load = ZoneLoading(2, np.array([0, 0, 1]), ("n", "w", "e"), np.array([0.25, 0.75, 1.0]))
    dem = np.array([[80.0, 100.0], [40.0, 0.0]])
    res = assign(net, dem, load, rgap_target=1e-8)
    flow = dict(zip(net.edges, res.flow_veh_h, strict=True))
    intra = 80.0 * 0.25 * 0.75
    assert flow["n", "c", 0] == pytest.approx(100.0 * 0.25 + intra)
    assert flow["w", "c", 0] == pytest.approx(100.0 * 0.75 + intra)
    assert flow["c", "e", 0] == pytest.approx(100.0)
    assert flow["c", "n", 0] == pytest.approx(40.0 * 0.25 + intra)
    assert flow["c", "w", 0] == pytest.approx(40.0 * 0.75 + intra)
    assert flow["s", "c", 0] == flow["c", "s", 0] == 0.0
    # one node per zone is the plain zone_nodes case: the intra-zonal trips are not assigned
    plain = assign(net, dem, ("n", "e"), rgap_target=1e-8)
    single = assign(net, dem, ZoneLoading.single(("n", "e")), rgap_target=1e-8)
    np.testing.assert_array_equal(plain.flow_veh_h, single.flow_veh_h)
    assert dict(zip(net.edges, plain.flow_veh_h, strict=True))["n", "c", 0] == pytest.approx(100.0)
    with pytest.raises(InputValidationError, match="sum to 1"):
        ZoneLoading(2, np.array([0, 0, 1]), ("n", "w", "e"), np.array([0.5, 0.75, 1.0]))
    with pytest.raises(InputValidationError, match="zone_nodes: 'x' is not a node"):
        assign(net, dem, ZoneLoading(2, np.array([0, 1]), ("x", "e"), np.ones(2)))
