"""Bus routes from the extracts' route=bus relations (or a line list), feeding bus priority."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from optimize.signals import bus_priorities
from twin._errors import CorruptInputError, DataMissingError
from twin.scenarios.network import signal_plans
from twin.signals.buses import (
    bus_groups,
    bus_routes,
    read_line_list,
    routes_from_line_list,
    routes_from_osm,
)
from twin.signals.plans import stage_minimums
from twin.signals.safety import check_program

BONDY_OSM_LINES = {"146", "147", "234", "346", "347", "351", "546", "615", "616", "N41", "N45"}


@pytest.fixture(scope="module")
def routes(bondy):  # type: ignore[no-untyped-def]
    return bus_routes(bondy)


def test_bondy_relations_become_routes(bondy, routes):
    assert {r.ref for r in routes} == BONDY_OSM_LINES
    assert all(r.source == "osm" and r.id.startswith("relation:") for r in routes)
    drive = bondy.drive
    for r in routes:
        assert r.edges and all(drive.has_edge(*e) for e in r.edges)
        # the extract is clipped: most of each line's ways are outside it
        assert r.missing_ways > 0


def test_routes_follow_the_bus_direction(bondy, routes):
    by_id = {r.id: r for r in routes}
    # line 616, one relation per direction, mostly on two-way streets: each runs the
    # other's edges backwards, never the same edge
    out, back = by_id["relation:2214086"], by_id["relation:2214106"]
    assert not set(out.edges) & set(back.edges)
    reversed_back = {(v, u) for u, v, _ in back.edges}
    assert sum((u, v) in reversed_back for u, v, _ in out.edges) >= 0.8 * len(out.edges)
    # line 146 runs a dual carriageway: each direction on its own one-way edges
    for rid in ("relation:2171710", "relation:2171711"):
        assert all(bondy.drive.edges[e]["oneway"] for e in by_id[rid].edges)
    # consecutive edges mostly join up (gaps only where the extract cuts the route)
    for r in routes:
        joined = sum(a[1] == b[0] for a, b in zip(r.edges, r.edges[1:], strict=False))
        assert joined >= (len(r.edges) - 1) // 2, r.id


def test_bus_approaches_get_validated_priority(bondy, routes):
    plans = signal_plans(bondy)
    groups = bus_groups(routes, plans.models)
    assert set(plans) <= set(groups)  # every planned junction of Bondy has a bus approach
    prio = bus_priorities(plans, plans.models, groups)
    assert set(prio) == set(plans)
    given = 0
    for jid, items in prio.items():
        assert {p.group for p in items} == set(groups[jid])
        plan, model = plans[jid], plans.models[jid]
        mins = stage_minimums(model, all_red_s=plan.all_red_s)
        for p in items:
            # the priority takes the other stages' greens down to their minimums, no further
            spare = sum(
                max(ph.green_s - m, 0.0)
                for i, (ph, m) in enumerate(zip(plan.phases, mins, strict=True))
                if i != p.stage
            )
            assert p.extend_s == pytest.approx(min(15.0, spare))
            assert p.early_s == pytest.approx(min(15.0, spare))
            given += p.extend_s > 0
            assert check_program(p.extended, model) == []
            assert check_program(p.early, model) == []
    assert given >= 2


def test_line_list_by_way_matches_the_relations(bondy, routes, tmp_path: Path):
    rel = next(r for r in routes if r.id == "relation:2214086")  # line 616
    ways = list(dict.fromkeys(int(bondy.drive.edges[e]["osmid"]) for e in rel.edges))
    f = tmp_path / "lines.csv"
    f.write_text("line;way\n" + "".join(f"616;{w}\n" for w in ways), encoding="utf-8")
    (from_list,) = bus_routes(bondy, line_list=f)
    assert from_list.source == "line list" and from_list.ref == "616"
    # a line list gives both directions of each way: a superset of the relation's edges
    assert set(rel.edges) <= set(from_list.edges)
    assert from_list.missing_ways == 0


def test_line_list_by_street(bondy):
    names = {
        str(d["name"]) for _, _, d in bondy.drive.edges(data=True) if isinstance(d.get("name"), str)
    }
    street = sorted(names)[0]
    lines = read_line_list(io.StringIO(f"line,street\nA,{street}\nA,Rue qui n'existe pas\n"))
    (r,) = routes_from_line_list(bondy.drive, lines)
    assert r.edges and r.missing_ways == 1
    assert all(bondy.drive.edges[e]["name"] == street for e in r.edges)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ligne,way\n1,2\n", "must include 'line'"),
        ("line,stop\n1,2\n", "'way' (OSM way ids) or 'street'"),
        ("line,way\n1,\n", "row 2: 'way' is empty"),
        ("line,way\n1,2\n,3\n", "row 3: 'line' is empty"),
        ("line,way\n1,abc\n", "row 2: 'way' 'abc' is not an OSM way id"),
    ],
)
def test_corrupt_line_lists(text: str, needle: str, tmp_path: Path):
    f = tmp_path / "bad.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(CorruptInputError, match="bad.csv") as err:
        read_line_list(f)
    assert needle in str(err.value)


def test_missing_line_list_and_no_relations(paris, tmp_path: Path):
    with pytest.raises(DataMissingError, match="no such file"):
        read_line_list(tmp_path / "none.csv")
    with pytest.raises(DataMissingError, match="paris-trocadero.graphml holds no route=bus"):
        bus_routes(paris)


def test_a_corrupt_extract_is_our_error(bondy, tmp_path: Path):
    src = Path(bondy.meta["files"]["osm"]["path"]).read_bytes()
    cut = tmp_path / "cut.osm"
    cut.write_bytes(src[: len(src) // 2] + b"<relation id=")
    with pytest.raises(CorruptInputError, match="cut.osm"):
        routes_from_osm(bondy.drive, cut)
