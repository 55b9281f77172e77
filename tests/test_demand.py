"""Tests of the demand model: gravity/Furness maths, profiles, events, validation, providers."""

from __future__ import annotations

import datetime as dt
import os
import pickle
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from twin._errors import InputValidationError, UnknownAssetError
from twin.cities import City
from twin.crs import LAMBERT93, to_wgs84
from twin.model import Twin
from twin.registry import Registry
from twin.scenarios import demand as D

PARIS = ZoneInfo("Europe/Paris")


def _data_root() -> Path:
    root = Path(__file__).resolve().parents[1]
    return (root / os.environ.get("TWIN_DATA", "../shared/data")).resolve()


def _small_twin(name: str, g: nx.MultiDiGraph, rows: list[dict[str, Any]]) -> Twin:
    """A twin of one commune of 20,000 people on ``g``, with ``rows`` as its segments."""
    seg = gpd.GeoDataFrame(rows, geometry="geometry", crs=LAMBERT93)
    city = City(
        name=name,
        title=name,
        timezone="Europe/Paris",
        centre=(2.3, 48.8),
        attribution="test",
        licence="test",
        source={"kind": "osm"},
        boundary={
            "kind": "communes",
            "communes": [{"insee": "0", "name": name[0], "population": 20_000}],
        },
    )
    return Twin(city, g, Registry({"segment": seg}), meta={})


SPUR = 10_000
"""Node of :func:`grid_twin`'s dead end."""


def grid_twin(
    n: int = 8, spacing: float = 150.0, *, island: bool = False, spur: bool = False
) -> Twin:
    """A small real Twin: an n x n street grid (two-way), optional unreachable island.

    ``spur``: a dead end (node :data:`SPUR`, "Impasse du Puits") off node ``n + 1``, diagonally
    into the block.
    """
    g = nx.MultiDiGraph(crs=LAMBERT93)
    x0, y0 = 650_000.0, 6_860_000.0

    def nid(i: int, j: int) -> int:
        return i * n + j

    for i in range(n):
        for j in range(n):
            g.add_node(nid(i, j), x=x0 + i * spacing, y=y0 + j * spacing)
    rows = []
    pairs = []
    for i in range(n):
        for j in range(n):
            if i + 1 < n:
                pairs.append(
                    (
                        nid(i, j),
                        nid(i + 1, j),
                        f"Rue {j}",
                        "primary" if j == n // 2 else "residential",
                    )
                )
            if j + 1 < n:
                pairs.append((nid(i, j), nid(i, j + 1), f"Avenue {i}", "residential"))
    if island:
        base = n * n
        for k in range(3):
            g.add_node(base + k, x=x0 + 5_000 + k * spacing, y=y0)
        pairs += [
            (base, base + 1, "Ile", "residential"),
            (base + 1, base + 2, "Ile", "residential"),
        ]
    if spur:
        g.add_node(SPUR, x=x0 + 1.2 * spacing, y=y0 + 1.2 * spacing)
        pairs.append((nid(1, 1), SPUR, "Impasse du Puits", "residential"))
    for s, (u, v, name, hw) in enumerate(pairs):
        sid = f"segment:{s:06d}"
        geom = shapely.LineString(
            [(g.nodes[u]["x"], g.nodes[u]["y"]), (g.nodes[v]["x"], g.nodes[v]["y"])]
        )
        attrs = {
            "length": spacing,
            "speed_kph": 50.0,
            "lanes": 2,
            "lanes_dir": 1,
            "highway": hw,
            "segment": sid,
            "drive": True,
            "name": name,
        }
        g.add_edge(u, v, geometry=geom, **attrs)
        g.add_edge(v, u, geometry=geom.reverse(), **attrs)
        rows.append(
            {
                "id": sid,
                "u": u,
                "v": v,
                "osmid": str(s),
                "name": name,
                "highway": hw,
                "lanes": 2,
                "speed_kph": 50.0,
                "length_m": spacing,
                "drive": True,
                "walk": True,
                "lighting_class": "P2",
                "geometry": geom,
            }
        )
    return _small_twin("grid", g, rows)


def xy_to_lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = to_wgs84(np.array([x]), np.array([y]))
    return float(lon[0]), float(lat[0])


# --- Furness -------------------------------------------------------------------------------------
def test_furness_converges_and_preserves_totals() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(10, 100, 12)
    a = rng.uniform(5, 50, 12)
    cost = rng.uniform(1, 30, (12, 12))
    T, it = D.furness(p, a, np.exp(-0.1 * cost), tol=1e-10)
    assert it > 1
    np.testing.assert_allclose(T.sum(axis=1), p, rtol=1e-8)
    np.testing.assert_allclose(T.sum(axis=0), a * p.sum() / a.sum(), rtol=1e-8)
    assert T.sum() == pytest.approx(p.sum())


def test_furness_reports_non_convergence_and_infeasible() -> None:
    rng = np.random.default_rng(0)
    f = np.exp(-rng.uniform(0, 10, (6, 6)))
    with pytest.raises(D.ConvergenceError, match="no convergence"):
        D.furness(rng.uniform(1, 9, 6), rng.uniform(1, 9, 6), f, max_iter=1, tol=1e-14)
    f = np.ones((2, 2))
    f[0, :] = 0.0
    with pytest.raises(InputValidationError, match="origin 0"):
        D.furness(np.array([1.0, 1.0]), np.array([1.0, 1.0]), f)
    with pytest.raises(InputValidationError, match="production: entry 1"):
        D.furness(np.array([1.0, np.nan]), np.array([1.0, 1.0]), np.ones((2, 2)))


def test_combined_deterrence_has_fewer_short_trips() -> None:
    dm = D.build_demand(grid_twin(n=8), cell_m=300.0)
    t = np.array([0.0, 2.0, 5.0, np.inf])
    expo = dm.with_params(beta_per_min=0.2)
    tanner = dm.with_params(beta_per_min=0.2, deterrence_power=1.0)
    np.testing.assert_allclose(expo.deterrence(t), [1.0, np.exp(-0.4), np.exp(-1.0), 0.0])
    # t^alpha exp(-beta t): peaks at alpha / beta = 5 min
    np.testing.assert_allclose(tanner.deterrence(t), [0.0, 2 * np.exp(-0.4), 5 * np.exp(-1.0), 0])
    cost = np.where(np.isfinite(dm.cost_min), dm.cost_min, 0.0)

    def mean_time(m: D.DemandModel) -> float:
        T = m.base_od()
        return float((T * cost).sum() / T.sum())

    assert mean_time(tanner) > mean_time(expo)
    with pytest.raises(InputValidationError, match="deterrence_power"):
        dm.with_params(deterrence_power=-1.0)


# --- profiles ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["car", "walk"])
@pytest.mark.parametrize("day_type", ["weekday", "saturday", "sunday"])
@pytest.mark.parametrize("slot", [60, 15])
def test_profiles_sum_to_one(mode: str, day_type: str, slot: int) -> None:
    p = D.profile(day_type, mode=mode, slot_minutes=slot)
    assert p.shape == (24 * 60 // slot,)
    assert p.sum() == pytest.approx(1.0)
    assert (p > 0).all()


def test_profile_shapes() -> None:
    wk, sat = D.profile("weekday"), D.profile("saturday")
    assert 7 <= int(np.argmax(wk[:12])) <= 9
    assert 16 <= int(np.argmax(wk[12:])) + 12 <= 18
    assert sat[20:].sum() > wk[20:].sum()  # later evening on Saturday
    assert int(np.argmax(sat)) >= 10
    with pytest.raises(InputValidationError, match="day_type"):
        D.profile("holiday")
    with pytest.raises(InputValidationError, match="slot_minutes"):
        D.profile("weekday", slot_minutes=7)


def test_local_slots_dst() -> None:
    assert len(D.local_slots(dt.date(2026, 3, 29), tz="Europe/Paris")[0]) == 92
    assert len(D.local_slots(dt.date(2026, 10, 25), tz="Europe/Paris")[0]) == 100
    t, h = D.local_slots(dt.date(2026, 6, 1), tz="Europe/Paris")
    assert len(t) == 96
    assert str(t[0]) == "2026-05-31T22:00:00.000000000"
    assert h[4] == 1


# --- model on a synthetic twin -------------------------------------------------------------------
def test_model_od_trips_and_pickle() -> None:
    tw = grid_twin()
    dm = D.build_demand(tw)
    assert dm.population.sum() == pytest.approx(20_000)
    T = dm.base_od()
    assert T.sum() == pytest.approx(20_000 * 3.7 * 0.40 / 2, rel=1e-6)
    od8 = dm.od(32)  # 08:00-08:15
    od3 = dm.od(12)
    assert od8.sum() > 5 * od3.sum()
    a = dm.trips("weekday", rng=7)
    b = dm.trips("weekday", rng=7)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["origin", "destination", "depart_s", "origin_zone", "dest_zone"]
    assert (np.diff(a["depart_s"].to_numpy()) >= 0).all()
    assert set(a["origin"]) <= set(tw.drive.nodes)
    # expected count of drawn trips: daily OD minus same-node draws
    assert len(a) + a.attrs["same_node_trips"] == pytest.approx(2 * T.sum(), rel=0.05)
    back = pickle.loads(pickle.dumps(dm))
    np.testing.assert_allclose(back.base_od(), T)


def test_unreachable_zones_reported_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    tw = grid_twin(island=True)
    dm = D.build_demand(tw)
    bad = dm.unreachable_zones()
    assert bad, "the island cell should be unreachable"
    trips = dm.trips("weekday", rng=1)
    assert trips.attrs["dropped_trips"] > 0
    assert trips.attrs["unreachable_zones"] == bad
    assert not set(trips["origin_zone"]) & set(bad)
    assert "dropped" in caplog.text


def test_nan_demand_names_zone_and_slot() -> None:
    dm = D.build_demand(grid_twin())
    pop = dm.population.copy()
    pop[3] = np.nan
    import dataclasses

    with pytest.raises(InputValidationError, match=rf"zone '{dm.zone_ids[3]}' in weekday slot 0"):
        dataclasses.replace(dm, population=pop)
    pop[3] = -5.0
    with pytest.raises(InputValidationError, match="negative or NaN"):
        dataclasses.replace(dm, population=pop)


def test_event_validation() -> None:
    tw = grid_twin()
    start = dt.datetime(2026, 6, 5, 20, tzinfo=PARIS)
    with pytest.raises(UnknownAssetError, match="segment:999999"):
        D.build_demand(
            tw,
            events=[
                D.Event("concert", "segment:999999", start, start + dt.timedelta(hours=2), 1000)
            ],
        )
    with pytest.raises(UnknownAssetError, match="junction:7"):
        D.build_demand(
            tw, events=[D.Event("market", "junction:7", start, start + dt.timedelta(hours=2), 1000)]
        )
    with pytest.raises(InputValidationError, match="Event.kind"):
        D.Event("party", (2.3, 48.8), start, start + dt.timedelta(hours=1), 10)
    with pytest.raises(InputValidationError, match="tz-aware"):
        D.Event("concert", (2.3, 48.8), dt.datetime(2026, 6, 5, 20), start, 10)  # noqa: DTZ001
    with pytest.raises(InputValidationError, match="not after start"):
        D.Event("concert", (2.3, 48.8), start, start, 10)


def test_event_raises_footfall_only_near_place_and_time() -> None:
    tw = grid_twin(n=12)
    seg = tw.registry["segment"]
    centre = "segment:000100"
    start = dt.datetime(2026, 6, 5, 20, tzinfo=PARIS)
    ev = D.Event(
        "concert", centre, start, start + dt.timedelta(hours=2), attendance=5000, radius_m=400
    )
    base = D.build_demand(tw)
    with_ev = D.build_demand(tw, events=[ev])
    day = dt.date(2026, 6, 5)
    t, r0 = base.pedestrian_intensity(day=day)
    _, r1 = with_ev.pedestrian_intensity(day=day)
    diff = r1 - r0
    assert (diff >= -1e-9).all()
    mid = shapely.get_coordinates(
        shapely.line_interpolate_point(seg.geometry.values, 0.5, normalized=True)
    )
    here = mid[seg.index.get_loc(centre)]
    dist = np.hypot(*(mid - here).T)
    far = dist > 400
    assert np.abs(diff[far]).max() == 0.0
    local = pd.DatetimeIndex(t).tz_localize("UTC").tz_convert(PARIS)
    in_window = (local >= pd.Timestamp(start - dt.timedelta(minutes=90))) & (
        local < pd.Timestamp(start + dt.timedelta(hours=2, minutes=45))
    )
    assert np.abs(diff[:, ~in_window]).max() == 0.0
    before = (local >= pd.Timestamp(start - dt.timedelta(minutes=90))) & (
        local < pd.Timestamp(start)
    )
    assert diff[dist < 100][:, before].min() > 0
    # the audience is conserved: pedestrian-metres added = attendance * radius / 2 for arrivals
    metres = (diff[:, before] * with_ev.seg_length_m[:, None]).sum() * 0.25
    assert metres == pytest.approx(5000 * 200, rel=1e-6)
    # and cars come to the event
    _, od0 = base.od_day(day=day)
    _, od1 = with_ev.od_day(day=day)
    assert od1.sum() > od0.sum()


def test_event_by_lonlat() -> None:
    tw = grid_twin()
    lonlat = xy_to_lonlat(650_000.0 + 300, 6_860_000.0 + 300)
    start = dt.datetime(2026, 6, 6, 8, tzinfo=PARIS)
    dm = D.build_demand(
        tw, events=[D.Event("market", lonlat, start, start + dt.timedelta(hours=5), 2000)]
    )
    np.testing.assert_allclose(dm.event_xy[0], [650_300.0, 6_860_300.0], atol=0.01)


# --- providers -----------------------------------------------------------------------------------
def test_profile_demand_follows_local_clock() -> None:
    tw = grid_twin()
    pdm = D.ProfileDemand.from_twin(tw)
    assert isinstance(pdm, D.Demand)
    segs = ["segment:000000", "segment:000004"]
    # 07:00 UTC = 09:00 local in summer, 08:00 local in winter
    times = np.array(
        ["2026-06-03T07:00", "2026-06-03T01:00", "2026-01-07T07:00"], dtype="datetime64[ns]"
    )
    f = pdm.footfall(segs, times)
    q = pdm.traffic(segs, times)
    assert f.shape == q.shape == (2, 3)
    wk = D.HOURLY_PROFILES["car"]["weekday"]
    assert q[0, 0] / q[0, 2] == pytest.approx(wk[9] / wk[8])
    assert (f[:, 0] > f[:, 1]).all()
    with pytest.raises(UnknownAssetError, match="segment:nope"):
        pdm.footfall(["segment:nope"], times)


def test_simulated_demand_lookup_and_wrap() -> None:
    times = np.array(["2026-06-02T22:00", "2026-06-02T23:00"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"footfall": (("segment", "time"), np.array([[1.0, 2.0], [3.0, 4.0]]))},
        coords={"segment": ["segment:a", "segment:b"], "time": times},
    )
    # the local clock is the city's: recorded by run_footfall, else given
    with pytest.raises(InputValidationError, match="local_timezone"):
        D.SimulatedDemand.from_dataset(ds)
    ds.attrs["local_timezone"] = "Europe/Paris"
    sd = D.SimulatedDemand.from_dataset(ds)
    q = np.array(["2026-06-02T23:30", "2026-06-09T22:10"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(
        sd.footfall(["segment:b", "segment:a"], q), [[4.0, 3.0], [2.0, 1.0]]
    )
    with pytest.raises(InputValidationError, match="flow"):
        sd.traffic(["segment:a"], q)
    strict = D.SimulatedDemand.from_dataset(ds, wrap=False)
    with pytest.raises(InputValidationError, match="outside the simulated span"):
        strict.footfall(["segment:a"], q)
    flow = xr.Dataset(
        {"flow": (("edge", "time"), np.array([[1.0, 1.0], [2.0, 5.0], [4.0, 4.0]]))},
        coords={"edge": ["segment:a", "segment:a", "segment:b"], "time": times},
    )
    sd2 = D.SimulatedDemand.from_dataset(ds, traffic=flow)
    np.testing.assert_array_equal(sd2.traffic(["segment:a"], times), [[3.0, 6.0]])


# --- real twins ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bondy(tmp_path_factory: pytest.TempPathFactory) -> Twin:
    import twin.model

    os.environ.setdefault("TWIN_DATA", str(_data_root()))
    os.environ.setdefault("TWIN_CACHE", str(tmp_path_factory.mktemp("cache")))
    return twin.model.load("bondy", progress=False)


def test_bondy_demand(bondy: Twin) -> None:
    dm = D.build_demand(bondy)
    zf = dm.zones_frame()
    # an extract of ~1 km2: population estimated from street length, below the commune's
    assert 0 < zf["population"].sum() < bondy.city.population
    assert (zf["activity"] > 0).any()  # Bondy has points of interest
    trips = dm.trips("saturday", rng=2)
    assert len(trips) > 1000
    t, rates = dm.pedestrian_intensity(day=dt.date(2026, 3, 28))
    assert rates.shape == (len(dm.segments), 96)
    assert np.isfinite(rates).all()


# --- gateways and zones off the main network ---------------------------------------------------
def _c_twin(*, spur: bool = False) -> Twin:
    """A C-shaped street network (a concave town) with a primary road ending inside its notch.

    Three 2 km arms of a 150 m grid around a 1.2 km notch; a primary road runs from the inner
    edge of the left arm into the notch and stops there, 600 m from the convex hull's edge but
    on the concave outline. With ``spur``, a one-way loop of residential streets 300 m beyond
    the right arm's edge forms its own strongly connected component.
    """
    g = nx.MultiDiGraph(crs=LAMBERT93)
    x0, y0, s = 650_000.0, 6_860_000.0, 150.0
    pts = {}
    for i in range(14):  # 0..1950 m
        for j in range(14):
            x, y = i * s, j * s
            in_notch = x > 450.0 and 450.0 < y < 1500.0
            if not in_notch:
                pts[(i, j)] = (x0 + x, y0 + y)
    nid = {k: n for n, k in enumerate(sorted(pts))}
    for k, n in nid.items():
        g.add_node(n, x=pts[k][0], y=pts[k][1])
    pairs = []
    for i, j in pts:
        for di, dj in ((1, 0), (0, 1)):
            if (i + di, j + dj) in pts:
                pairs.append((nid[(i, j)], nid[(i + di, j + dj)], "Rue", "residential", True))
    # the primary road into the notch: from (3, 6) east, 3 nodes, ending in a dead end
    last = nid[(3, 6)]
    for k in range(1, 4):
        n = len(g)
        g.add_node(n, x=x0 + (3 + k) * s, y=y0 + 6 * s)
        pairs.append((last, n, "Route du Golfe", "primary", True))
        last = n
    if spur:
        base = len(g)
        ring = [(2250.0, 900.0), (2400.0, 900.0), (2400.0, 1050.0), (2250.0, 1050.0)]
        for k, (x, y) in enumerate(ring):
            g.add_node(base + k, x=x0 + x, y=y0 + y)
        for k in range(4):
            pairs.append((base + k, base + (k + 1) % 4, "Rue à sens unique", "residential", False))
    rows = []
    for sidx, (u, v, name, hw, two_way) in enumerate(pairs):
        sid = f"segment:{sidx:06d}"
        a = (g.nodes[u]["x"], g.nodes[u]["y"])
        b = (g.nodes[v]["x"], g.nodes[v]["y"])
        geom = shapely.LineString([a, b])
        attrs = {
            "length": float(np.hypot(b[0] - a[0], b[1] - a[1])),
            "speed_kph": 50.0,
            "lanes": 2 if two_way else 1,
            "lanes_dir": 1,
            "highway": hw,
            "segment": sid,
            "drive": True,
            "name": name,
        }
        g.add_edge(u, v, geometry=geom, **attrs)
        if two_way:
            g.add_edge(v, u, geometry=geom.reverse(), **attrs)
        rows.append(
            {
                "id": sid, "u": u, "v": v, "osmid": str(sidx), "name": name, "highway": hw,
                "lanes": attrs["lanes"], "speed_kph": 50.0, "length_m": attrs["length"],
                "drive": True, "walk": True, "lighting_class": "P2", "geometry": geom,
            }
        )  # fmt: skip
    return _small_twin("c", g, rows)


def test_gateway_in_the_notch_of_a_concave_network() -> None:
    # the convex hull's edge is 600 m from the dead end; the network's own outline is at it
    dm = D.build_demand(_c_twin())
    gates = [z for z in dm.zone_ids if z.startswith("gateway:")]
    assert len(gates) == 1
    node = dm.zone_node[dm.zone_ids.index(gates[0])]
    tw = _c_twin()
    ((_, _, hw),) = tw.drive.in_edges(node, data="highway")
    assert hw == "primary"
    assert "concave" in dm.provenance["external"]


def test_zone_off_the_main_network_attached_to_nearest_main_node() -> None:
    tw = _c_twin(spur=True)
    dm = D.build_demand(tw)
    # the one-way loop is its own component: its cell is served from the main network
    assert dm.unreachable_zones() == []
    assert dm.dropped_per_day() == 0
    spur = {n for n in tw.drive.nodes if tw.drive.nodes[n]["x"] > 650_000.0 + 2_200.0}
    zones = [z for z, n in zip(dm.zone_ids, dm.zone_node, strict=True) if z.startswith("cell:")]
    assert zones
    assert not spur & set(dm.node_ids), "trips must not start on the loop they cannot leave"
    assert "attached" in dm.provenance["zones"]
    trips = dm.trips("weekday", rng=3)
    assert len(trips) > 0


def test_montpellier_gateways_on_the_concave_outline(montpellier: Twin) -> None:
    dm = D.build_demand(montpellier)
    gates = [i for i, z in enumerate(dm.zone_ids) if z.startswith("gateway:")]
    names = set()
    for i in gates:
        node = dm.zone_node[i]
        names |= {str(nm) for *_, nm in montpellier.drive.in_edges(node, data="name")}
    # more than the convex hull's four, the main entry roads among them
    assert 12 <= len(gates) <= 30, sorted(names)
    for road in ("Autoroute A9", "Avenue de Palavas", "Route de Ganges", "Route de Lodève"):
        assert any(road in n for n in names), (road, sorted(names))
    # shared by what each entry road can carry, the A9 most
    ext = dm.external[gates]
    assert ext.min() > 0
    assert dm.unreachable_zones() == []
    assert "concave" in dm.provenance["external"]
    # a gateway's node, and a node serving a cell cut off from the network, belong to two zones;
    # a trip between them is no trip
    trips = dm.trips("weekday", rng=1)
    assert (trips["origin"] != trips["destination"]).all()
    assert trips.attrs["same_node_trips"] > 0


def test_loading_nodes_spread_the_zone_as_the_des_weights_them() -> None:
    tw = grid_twin(n=8)
    dm = D.build_demand(tw, cell_m=450.0)  # 3 x 3 nodes per cell
    nz = len(dm.zone_ids)
    every = dm.loading(None)
    # every node of a zone, its share the DES's (node weight over the zone's)
    tot = np.bincount(dm.node_zone, weights=dm.node_weight, minlength=nz)
    np.testing.assert_allclose(np.sort(every.weight), np.sort(dm.node_weight / tot[dm.node_zone]))
    for k in (1, 2, 4):
        load = dm.loading(k)
        np.testing.assert_allclose(np.bincount(load.zone, weights=load.weight), 1.0)
        counts = np.bincount(load.zone, minlength=nz)
        assert counts.max() <= k
        assert (counts == np.minimum(k, np.bincount(dm.node_zone, minlength=nz))).all()
        # the zone's node first
        firsts = {int(z): n for z, n in reversed(list(zip(load.zone, load.node, strict=True)))}
        assert all(firsts[z] == dm.zone_node[z] for z in firsts)
    # the second node is the one of the zone farthest from the zone's node
    two = dm.loading(2)
    xy = {n: (d["x"], d["y"]) for n, d in tw.drive.nodes(data=True)}
    for z in np.flatnonzero(np.bincount(two.zone, minlength=nz) == 2).tolist():
        second = [n for zz, n in zip(two.zone, two.node, strict=True) if zz == z][1]
        rep = np.array(xy[dm.zone_node[z]])
        far = max(np.hypot(*(np.array(xy[n]) - rep)) for n in dm.node_ids[dm.node_zone == z])
        assert np.hypot(*(np.array(xy[second]) - rep)) == pytest.approx(far)
    with pytest.raises(InputValidationError, match="nodes"):
        dm.loading(0)
