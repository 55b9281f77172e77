"""Clusters whose approaches, taken as one junction, need more than 4 stages run as sub-junctions,
each with its own stop lines and at most 4 stages, on one cycle; and the skip summary groups the
junctions left out by reason."""

from __future__ import annotations

import json
import math
import pickle

import networkx as nx
import pytest
from graphs import X0, Y0, cluster

from twin._errors import InputValidationError
from twin.scenarios.network import PlanSet, signal_plans
from twin.signals import junction as junction_mod
from twin.signals.junction import (
    LINK_MIN_M,
    MAX_STAGES,
    JunctionModel,
    approaches_of,
    build_junction,
)
from twin.signals.plans import webster
from twin.signals.safety import check_plan, validate

#: Montpellier's clusters that need 5 or 6 stages as one junction (all split) and its one
#: six-arm node (left out).
MONTPELLIER_SPLIT = [
    f"junction:{n}" for n in (74, 116, 117, 152, 159, 174, 243, 288, 317, 337, 338, 352)
]


def _build(g: nx.MultiDiGraph, nodes: list[str]) -> JunctionModel:
    return build_junction(
        g, "junction:1", nodes=nodes, approaches=approaches_of(g, nodes), assume_crossings=True
    )


def _part_of(m: JunctionModel) -> dict[str, int]:
    """Part index of each signal group, from the graph node its approach (or crossing) enters."""
    where = {n: i for i, p in enumerate(m.parts) for n in p}
    out = {g.id: where[g.edge[1]] for g in m.groups if g.edge is not None}
    for c in m.crossings:
        ends = {where[n] for e in c.edges for n in e[:2] if n in where}
        assert len(ends) >= 1
        out[c.id] = min(ends) if len(ends) == 1 else -1
    return out


def test_a_cluster_that_needs_five_stages_gets_a_safe_plan_as_sub_junctions(monkeypatch):
    g = cluster((0.0, 40.0))  # a five-arm node and a cross-roads 40 m apart
    # as one junction (no link long enough to cut) it needs five stages
    monkeypatch.setattr(junction_mod, "LINK_MIN_M", 1e6)
    with pytest.raises(InputValidationError, match="need 5 stages, more than 4"):
        _build(g, ["a", "b"])
    monkeypatch.undo()
    m = _build(g, ["a", "b"])
    assert 2 <= len(m.stages) <= MAX_STAGES
    assert m.parts == (("a",), ("b",))
    # the link's two directions are signal groups of their own, each with its stop line
    ab, ba = m.group_of_edge(("a", "b", 0)), m.group_of_edge(("b", "a", 0))
    assert ab.startswith("link:1.") and ba.startswith("link:1.") and ab != ba
    assert m.conflicts(ba, m.group_of_edge(("an", "a", 0)))  # it crosses the traffic of a
    assert m.conflicts(ab, m.group_of_edge(("bn", "b", 0)))  # and this one that of b
    # groups of different parts never conflict; every group is served
    part = _part_of(m)
    for x in m.group_ids:
        for y in m.group_ids:
            if part[x] >= 0 and part[y] >= 0 and part[x] != part[y]:
                assert not m.conflicts(x, y), (x, y)
    assert set().union(*map(set, m.stages)) == set(m.group_ids)
    # a link stores a few cars only: it is green in every stage where nothing of its part that
    # conflicts with it is
    for link in (ab, ba):
        for stage in m.stages:
            free = not any(m.conflicts(link, g) for g in stage if g != link)
            assert (link in stage) == free, (link, stage)
    # Webster's plan on it passes the validator, with every group's conflicts and intergreens
    flows = {v: 300.0 for v in m.vehicle_groups}
    plan = webster(m, flows)
    assert check_plan(plan, m) == []
    validate(plan, m)
    assert {m.group_of_edge(a) for ph in plan.phases for a in ph.approaches} == set(
        m.vehicle_groups
    )
    # the model keeps its parts through JSON and pickle
    back = JunctionModel.from_dict(json.loads(m.to_json()))
    assert back.parts == m.parts and back.stages == m.stages
    assert pickle.loads(pickle.dumps(m)).parts == m.parts


def test_fewest_cuts_first():
    g = cluster((0.0, 40.0, 80.0))
    m = _build(g, ["a", "b", "c"])
    # one cut (a | b c) is enough: b and c stay one sub-junction
    assert m.parts == (("a",), ("b", "c"))
    assert len(m.stages) <= MAX_STAGES
    assert check_plan(webster(m, dict.fromkeys(m.vehicle_groups, 200.0)), m) == []


def test_a_link_too_short_for_its_own_stop_line_is_not_cut():
    short = cluster((0.0, LINK_MIN_M - 0.1))
    with pytest.raises(InputValidationError, match="and as sub-junctions too"):
        _build(short, ["a", "b"])
    assert _build(cluster((0.0, LINK_MIN_M)), ["a", "b"]).parts == (("a",), ("b",))


def test_one_node_of_six_arms_is_left_out_with_its_reason():
    """Six arms at one node, every turn allowed, at the bearings of Montpellier's junction:30
    (Liberté / Les Grèzes): each exit takes a merge from every other arm."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    g.add_node("o", x=X0, y=Y0)
    for i, bearing in enumerate((26, 70, 155, 203, 248, 346)):
        t = math.radians(bearing)
        n = f"arm{i}"
        g.add_node(n, x=X0 + 100 * math.sin(t), y=Y0 + 100 * math.cos(t))
        for u, v in ((n, "o"), ("o", n)):
            g.add_edge(
                u, v, length=100.0, speed_kph=50.0, lanes=2, lanes_dir=1, segment=f"s{i}", name=n
            )
    with pytest.raises(InputValidationError, match="at one node"):
        _build(g, ["o"])


def test_montpellier_clusters_get_validated_plans(montpellier):
    plans = signal_plans(montpellier)
    for jid in MONTPELLIER_SPLIT:
        assert jid in plans, plans.skipped.get(jid)
        model = plans.models[jid]
        assert len(model.parts) >= 2 and len(model.stages) <= MAX_STAGES
        assert check_plan(plans[jid], model) == []
        links = [g for g in model.vehicle_groups if g.startswith("link:")]
        rows = plans.flows[plans.flows["junction"] == jid]
        assert len(rows) == len(model.vehicle_groups)  # the links' flows are there too
        if links:
            assert rows["flow_pcu_h"].sum() > 0
    assert "at one node" in plans.skipped["junction:30"]
    # MAXBAND gives a signal one red for the street: a cluster of several is no corridor's
    from optimize.maxband import corridors

    assert not {j for a in corridors(montpellier, plans) for j in a.junctions} & set(
        MONTPELLIER_SPLIT
    )
    assert not [j for j, r in plans.skipped.items() if "stages" in r and j != "junction:30"]


def test_skip_summary_groups_junctions_by_reason():
    ps = PlanSet()
    ps.skipped = {
        "junction:30": "junction junction:30: its approaches need 5 stages, more than 4",
        "junction:43": "1 approach(es) and nothing that conflicts: no plan needed",
        "junction:57": "1 approach(es) and nothing that conflicts: no plan needed",
        "junction:74": "junction junction:74: its approaches need 5 stages, more than 4",
        "junction:80": "0 approaches",
    }
    text = ps.summary()
    assert "junction junction:" not in text
    assert text.count("its approaches need 5 stages, more than 4") == 1
    assert "its approaches need 5 stages, more than 4 (2: junction:30, junction:74)" in text
    assert "no plan needed (2: junction:43, junction:57)" in text
    assert "0 approaches (1: junction:80)" in text
    groups = ps.skipped_by_reason()
    assert list(groups.values())[-1] == ["junction:80"]
    assert sum(map(len, groups.values())) == len(ps.skipped)
