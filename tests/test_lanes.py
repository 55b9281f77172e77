"""Lanes per direction with their provenance (osm, inferred, default), from tags and counts."""

from __future__ import annotations

import logging

import networkx as nx
import numpy as np
import pytest
import shapely

from twin.derive.segments import LANES_MAX, edge_lanes, segments, turn_pockets

X0, Y0 = 840_000.0, 6_250_000.0


def street(**tags: object) -> nx.MultiDiGraph:
    """One two-way (or one-way) OSM way of 100 m between nodes 1 and 2, with ``tags``."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    g.add_node(1, x=X0, y=Y0)
    g.add_node(2, x=X0 + 100.0, y=Y0)
    line = shapely.LineString([(X0, Y0), (X0 + 100.0, Y0)])
    base = {"osmid": 42, "highway": "secondary", "length": 100.0, **tags}
    g.add_edge(1, 2, geometry=line, reversed=False, **base)
    if not tags.get("oneway"):
        g.add_edge(2, 1, geometry=line.reverse(), reversed=True, **base)
    return g


def test_forward_and_backward_tags_give_each_direction_its_lanes() -> None:
    g = street(lanes="3", **{"lanes:forward": "2", "lanes:backward": "1"})
    seg = segments(g)
    assert seg[["lanes", "lanes_forward", "lanes_backward"]].iloc[0].tolist() == [3, 2, 1]
    assert seg["lanes_source"].iloc[0] == "osm"
    assert g.edges[1, 2, 0]["lanes_dir"] == 2
    assert g.edges[2, 1, 0]["lanes_dir"] == 1


def test_plain_lanes_tag_one_way_and_default() -> None:
    seg = segments(street(lanes="4"))
    assert seg[["lanes", "lanes_forward", "lanes_backward", "lanes_source"]].iloc[0].tolist() == [
        4,
        2,
        2,
        "osm",
    ]
    one = segments(street(lanes="2", oneway=True))
    assert one[["lanes_forward", "lanes_backward"]].iloc[0].tolist() == [2, 0]
    untagged = segments(street())
    # secondary: 2 lanes in all by default, one each way
    assert untagged[["lanes", "lanes_forward", "lanes_source"]].iloc[0].tolist() == [
        2,
        1,
        "default",
    ]


def test_turn_lanes_give_lanes_and_pockets() -> None:
    g = street(oneway=True, **{"turn:lanes": "left|through|through;right"})
    seg = segments(g)
    assert seg[["lanes", "lanes_forward", "lanes_source"]].iloc[0].tolist() == [3, 3, "osm"]
    assert g.edges[1, 2, 0]["turn_pockets"] == 1
    assert turn_pockets("left|left|through") == 2
    assert turn_pockets("through|through;right") == 0


@pytest.mark.parametrize("bad", ["0", "9", "1.5"])
def test_a_lane_count_out_of_range_is_reported_with_the_way(
    bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    g = street(lanes=bad)
    with caplog.at_level(logging.WARNING):
        seg = segments(g)
    assert seg["lanes_source"].iloc[0] == "default"
    assert f"way 42 (1->2): lanes={bad!r} is not 1-{LANES_MAX} lanes" in caplog.text
    assert len(g.graph["lane_issues"]) == 2  # both directions of the way
    assert all("way 42" in i for i in g.graph["lane_issues"])


def test_municipal_lanes_are_inferred_from_counts_not_read_as_tags() -> None:
    issues: list[str] = []
    # a municipal centreline carries its class default as `lanes`: it is not an OSM tag
    quiet = {"street_type": "RUE", "lanes": 9, "aadt": 3000.0}
    assert edge_lanes(quiet, "residential", oneway=False, where="m", issues=issues) == (
        2,
        1,
        "inferred",
        "",
    )
    # 20,000 veh/day in the busiest direction: 2,400 in the peak hour, three lanes of 900
    busy = {"street_type": "AV", "lanes": 2, "aadt": 20000.0}
    assert edge_lanes(busy, "primary", oneway=False, where="m", issues=issues)[:3] == (
        6,
        3,
        "inferred",
    )
    # one-way: the count is that one direction's; 12,000 veh/day, 1,440 in the peak hour
    one_way = {"street_type": "BD", "aadt": 12000.0}
    assert edge_lanes(one_way, "secondary", oneway=True, where="m", issues=issues)[:3] == (
        2,
        2,
        "inferred",
    )
    # never more than three lanes each way, however large the count
    huge = {"street_type": "AV", "aadt": 90000.0}
    assert edge_lanes(huge, "primary", oneway=False, where="m", issues=issues)[:2] == (6, 3)
    # a count never takes lanes away: a one-way street keeps its class's whole default
    light = {"street_type": "AV", "aadt": 500.0}
    assert edge_lanes(light, "primary", oneway=True, where="m", issues=issues)[:3] == (
        2,
        2,
        "inferred",
    )
    # no count: street type and direction only, still inferred
    uncounted = {"street_type": "AV", "lanes": 2}
    assert edge_lanes(uncounted, "primary", oneway=False, where="m", issues=issues)[:3] == (
        2,
        1,
        "inferred",
    )
    # an urban motorway is a dual carriageway of two lanes each way at least, counted or not
    motorway = {"street_type": "AUTO"}
    assert edge_lanes(motorway, "trunk", oneway=False, where="m", issues=issues)[:3] == (
        4,
        2,
        "inferred",
    )
    assert edge_lanes(motorway, "trunk", oneway=True, where="m", issues=issues)[:2] == (2, 2)
    busy_motorway = {"street_type": "AUTO", "aadt": 25000.0}
    assert edge_lanes(busy_motorway, "trunk", oneway=False, where="m", issues=issues)[:2] == (
        6,
        3,
    )
    # an OSM edge's daily count (none in OSM, but say one were joined) sizes nothing
    tagged = {"aadt": 20000.0}
    assert edge_lanes(tagged, "primary", oneway=False, where="w", issues=issues)[:3] == (
        2,
        1,
        "default",
    )
    assert not issues  # its `lanes` is not read, so not reported either


def test_montpellier_lanes(montpellier) -> None:  # type: ignore[no-untyped-def]
    seg = montpellier.registry["segment"]
    assert set(seg["lanes_source"]) == {"inferred"}  # municipal data has no lane tags
    drive = seg[seg["drive"]]
    assert (drive["lanes_forward"] >= 1).all()
    assert drive["lanes_forward"].max() <= 3
    total = drive["lanes_forward"] + drive["lanes_backward"]
    np.testing.assert_array_equal(total.to_numpy(), drive["lanes"].to_numpy())
    assert (drive.loc[drive["oneway"], "lanes_backward"] == 0).all()
    # a two-way street of two lanes or more has a lane each way (a one-lane one is shared)
    wide_two_way = drive[~drive["oneway"] & (drive["lanes"] >= 2)]
    assert (wide_two_way["lanes_backward"] >= 1).all()
    # the counted main streets: hundreds of segments need two lanes or more each way
    two_way_wide = drive[~drive["oneway"] & (drive["lanes_forward"] >= 2)]
    assert len(two_way_wide) > 100
    assert (two_way_wide["lanes_backward"] == two_way_wide["lanes_forward"]).all()
    # the A9, a gateway, is a motorway: two lanes each way at least
    a9 = drive[drive["name"].fillna("").str.contains("Autoroute A9")]
    assert len(a9) > 0
    assert (a9["lanes_forward"] >= 2).all()


def test_bondy_lanes_come_from_its_tags(bondy) -> None:  # type: ignore[no-untyped-def]
    seg = bondy.registry["segment"]
    osm = seg[seg["lanes_source"] == "osm"]
    assert len(osm) > 0
    assert set(seg["lanes_source"]) <= {"osm", "default"}
    assert (seg.loc[seg["drive"], "lanes_forward"].between(1, LANES_MAX)).all()


@pytest.mark.parametrize("bad", ["0", "9"])
def test_a_bad_lane_count_on_a_real_way_is_reported(bondy, bad: str) -> None:  # type: ignore[no-untyped-def]
    # one two-way Bondy street with a lanes tag, cut from the real graph, its tag spoiled
    g = bondy.graph
    u, v, k, d = next(
        (u, v, k, d)
        for u, v, k, d in g.edges(keys=True, data=True)
        if d.get("lanes_source") == "osm" and g.has_edge(v, u) and d.get("highway") == "tertiary"
    )
    cut = g.subgraph([u, v]).copy()
    for a, b, key in list(cut.edges(keys=True)):
        data = cut.edges[a, b, key]
        data["lanes"] = bad
        for tag in ("lanes:forward", "lanes:backward", "lanes_dir", "lanes_source"):
            data.pop(tag, None)
    seg = segments(cut)
    way = d.get("osmid")
    issues = cut.graph["lane_issues"]
    assert issues and all(f"way {way}" in i and f"lanes={bad!r}" in i for i in issues)
    assert (seg["lanes_source"] == "default").all()
