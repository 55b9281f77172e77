"""Signal plans: the junction model, the safety validator (one hand-written unsafe plan per rule,
each built from the rule as its source states it), plans as data, Webster on the model."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pickle

import numpy as np
import pytest

from twin._errors import InputValidationError, UnknownAssetError, UnsafePlanError
from twin.scenarios.signals import Phase, SignalPlan
from twin.signals.junction import (
    AMBER_S,
    JunctionModel,
    approaches_of,
    build_junction,
    crossroads_graph,
    junction_models,
)
from twin.signals.plans import stage_minimums, stage_plan, webster
from twin.signals.safety import (
    RULES,
    GroupProgram,
    SafetyRules,
    SignalProgram,
    check_plan,
    check_program,
    plan_document,
    program_of,
    validate,
)


def _cross(*, crossings: bool = False) -> JunctionModel:
    g = crossroads_graph()
    if crossings:
        # crossings on the north and east arms, 10 m from the centre
        g.add_node(90, x=0.0, y=10.0, highway="crossing")
        g.add_node(91, x=10.0, y=0.0, highway="crossing")
        return build_junction(
            g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]), crossings=[90, 91]
        )
    return build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))


def _edges(m: JunctionModel, *groups: str) -> list:
    return [m.group(g).edge for g in groups]


# ---------------------------------------------------------------- the junction model ----------
def test_crossroads_model_by_hand():
    m = _cross()
    # a:1 comes from the north (travels south), a:2 from the east, a:3 south, a:4 west
    turns = {
        mv.id.split(">")[0] + ">" + mv.id.split(">")[1].split("_")[1]: mv.turn for mv in m.movements
    }
    assert turns["a:1>3"] == "T" and turns["a:1>2"] == "L" and turns["a:1>4"] == "R"
    assert len(m.movements) == 12  # 4 approaches x 3 exits, no U-turns
    # crossing streets conflict; opposite approaches only through permitted left turns
    assert m.conflicts("a:1", "a:2") and m.conflicts("a:1", "a:4")
    assert not m.conflicts("a:1", "a:3") and ("a:1", "a:3") in m.permissive
    assert m.stages == (("a:1", "a:3"), ("a:2", "a:4"))
    # intergreen = amber + all-red; all-red = (s_c + 6 m) / v_c - s_e / 11.1 m/s, >= 1 s
    ig = m.intergreen("a:1", "a:2")
    assert AMBER_S + 1.0 <= ig <= AMBER_S + 3.0
    assert np.isnan(m.intergreen("a:1", "a:3"))
    # symmetric conflict matrix, intergreen exactly where conflicts are
    assert (m.conflict == m.conflict.T).all()
    assert (np.isfinite(m.intergreen_s) == m.conflict).all()


def test_crossing_conflicts_and_clearance():
    m = _cross(crossings=True)
    assert len(m.crossings) == 2 and {c.source for c in m.crossings} == {"osm"}
    north = next(c.id for c in m.crossings if c.node == 90)
    # 2 lanes of 3.5 m: 7 m at 1.0 m/s
    assert m.group(north).width_m == pytest.approx(7.0)
    assert m.clearance_s(north) == pytest.approx(7.0)
    # vehicles entering from the north arm or going straight into it cross the crosswalk
    assert m.conflicts(north, "a:1") and m.conflicts(north, "a:3")
    # east-west traffic only turns into the north arm: permitted (drivers give way)
    assert not m.conflicts(north, "a:2") and not m.conflicts(north, "a:4")
    assert m.intergreen(north, "a:1") == pytest.approx(7.0)
    # pedestrians walk with the other axis
    assert any(north in s and "a:2" in s for s in m.stages)


def test_unknown_group_lists_nearest_ids():
    m = _cross()
    with pytest.raises(UnknownAssetError, match="nearest: a:"):
        m.index("a:9")


def test_model_round_trips_json_and_pickle():
    m = _cross(crossings=True)
    back = JunctionModel.from_dict(json.loads(m.to_json()))
    assert back.group_ids == m.group_ids and back.stages == m.stages
    assert (back.conflict == m.conflict).all()
    assert np.allclose(back.intergreen_s, m.intergreen_s, equal_nan=True, atol=1e-3)
    again = pickle.loads(pickle.dumps(m))
    assert again.conflicts("a:1", "a:2")
    with pytest.raises(InputValidationError, match="malformed"):
        JunctionModel.from_dict({"junction": "junction:0"})


def test_real_junctions_paris(paris):
    skipped: dict[str, str] = {}
    models = junction_models(paris, skipped=skipped)
    assert set(models) | set(skipped) == set(paris.registry["junction"].index)
    assert len(models) >= 35
    # OSM crossings (highway=crossing nodes) are found on the arms
    assert sum(len(m.crossings) for m in models.values()) > 30
    assert all(c.source == "osm" for m in models.values() for c in m.crossings)
    for m in models.values():
        assert 2 <= len(m.stages) <= 4
        assert (m.conflict == m.conflict.T).all()
        ok = m.intergreen_s[m.conflict]
        assert (ok > AMBER_S).all() and np.isfinite(ok).all()
        # no stage holds two conflicting groups; every group is in a stage
        for s in m.stages:
            idx = [m.index(g) for g in s]
            assert not m.conflict[np.ix_(idx, idx)].any()
        assert {g for s in m.stages for g in s} == set(m.group_ids)
    with pytest.raises(UnknownAssetError, match="nearest: junction:"):
        junction_models(paris, junctions=["junction:999"])


def test_municipal_data_assumes_crossings(montpellier):
    models = junction_models(montpellier, junctions=["junction:1", "junction:2", "junction:3"])
    crossings = [c for m in models.values() for c in m.crossings]
    assert crossings and {c.source for c in crossings} == {"assumed"}


# ---------------------------------------------------------------- the validator: one rule each -
def _ok_plan(m: JunctionModel, **kw) -> SignalPlan:
    ns, ew = _edges(m, "a:1", "a:3"), _edges(m, "a:2", "a:4")
    return SignalPlan(
        "junction:0", 60.0, 0.0, (Phase(ns, 25.0), Phase(ew, 25.0)), all_red_s=2.0, **kw
    )


def test_a_safe_plan_passes():
    m = _cross()
    plan = _ok_plan(m)
    assert check_plan(plan, m) == []
    prog = validate(plan, m)
    assert prog.group("a:1").greens == ((0.0, 25.0),)
    assert prog.group("a:2").greens == ((30.0, 55.0),)


def test_rule_conflict():
    """NEMA TS 2 (MMU): green/yellow/walk on two conflicting channels at once is a conflict."""
    m = _cross()
    ns, ew = _edges(m, "a:1", "a:3"), _edges(m, "a:2", "a:4")
    plan = SignalPlan("junction:0", 60.0, 0.0, (Phase(ns + ew[:1], 25.0), Phase(ew, 25.0)))
    bad = check_plan(plan, m)
    rules = {v.rule for v in bad}
    assert "conflict" in rules
    v = next(v for v in bad if v.rule == "conflict")
    assert set(v.groups) in ({"a:1", "a:2"}, {"a:3", "a:2"})
    assert v.actual_s == pytest.approx(25.0 + 3.0)  # green plus amber together
    assert ">" in v.movements  # the movements whose paths cross
    with pytest.raises(UnsafePlanError, match=r"conflict: a:\d .* both active for 28.0 s"):
        validate(plan, m)


def test_rule_min_green():
    """DESIGN section 4: a minimum green of 5-7 s (the validator's default: 5 s)."""
    m = _cross()
    prog = SignalProgram(
        "junction:0",
        40.0,
        0.0,
        (
            GroupProgram("a:1", ((0.0, 4.0),), 3.0),
            GroupProgram("a:3", ((0.0, 4.0),), 3.0),
            GroupProgram("a:2", ((10.0, 34.0),), 3.0),
            GroupProgram("a:4", ((10.0, 34.0),), 3.0),
        ),
    )
    bad = [v for v in check_program(prog, m) if v.rule == "min_green"]
    assert {v.groups for v in bad} == {("a:1",), ("a:3",)}
    assert bad[0].required_s == 5.0 and bad[0].actual_s == pytest.approx(4.0)


def test_rule_amber():
    """MUTCD 2009 4D.26: a yellow change interval of 3 to 6 s after every green."""
    m = _cross()
    short = SignalProgram(
        "junction:0",
        60.0,
        0.0,
        tuple(
            GroupProgram(g, (w,), 2.0 if g == "a:2" else 3.0)
            for g, w in (
                ("a:1", (0.0, 25.0)),
                ("a:3", (0.0, 25.0)),
                ("a:2", (30.0, 55.0)),
                ("a:4", (30.0, 55.0)),
            )
        ),
    )
    bad = [v for v in check_program(short, m) if v.rule == "amber"]
    assert [v.groups for v in bad] == [("a:2",)] and bad[0].actual_s == 2.0
    # an amber cut short by the next green (green, 1 s of amber, green again)
    flicker = SignalProgram(
        "junction:0",
        60.0,
        0.0,
        (
            GroupProgram("a:1", ((0.0, 10.0), (11.0, 25.0)), 3.0),
            GroupProgram("a:3", ((0.0, 25.0),), 3.0),
            GroupProgram("a:2", ((30.0, 55.0),), 3.0),
            GroupProgram("a:4", ((30.0, 55.0),), 3.0),
        ),
    )
    bad = [v for v in check_program(flicker, m) if v.rule == "amber"]
    assert bad and bad[0].actual_s == pytest.approx(1.0) and bad[0].at_s == pytest.approx(10.0)


def test_rule_intergreen():
    """ITE 2020 red clearance (W + L) / v after the amber, to the conflict point."""
    m = _cross()
    ns, ew = _edges(m, "a:1", "a:3"), _edges(m, "a:2", "a:4")
    plan = SignalPlan("junction:0", 60.0, 0.0, (Phase(ns, 27.0), Phase(ew, 27.0)), all_red_s=0.0)
    bad = [v for v in check_plan(plan, m) if v.rule == "intergreen"]
    assert bad
    v = bad[0]
    assert v.actual_s == pytest.approx(3.0)  # amber only
    assert v.required_s == pytest.approx(m.intergreen(*v.groups))
    assert "needs" in v.message and v.movements


def test_rule_pedestrian_clearance():
    """MUTCD 2009 4E.06: clearance for a pedestrian leaving at the end of the walk to reach the
    far side, here at 1.0 m/s: a 7 m crossing needs 7 s between walk end and conflicting green."""
    m = _cross(crossings=True)
    north = next(c.id for c in m.crossings if c.node == 90)
    ns, ew = _edges(m, "a:1", "a:3"), _edges(m, "a:2", "a:4")
    # the crossing walks all through the east-west stage: no time left to clear
    plan = SignalPlan(
        "junction:0",
        60.0,
        0.0,
        (Phase(ns, 25.0), Phase(ew, 25.0, walks=((north, 30.0),))),
        all_red_s=2.0,
    )
    bad = check_plan(plan, m)
    assert {"conflict", "intergreen"} <= {v.rule for v in bad}
    assert any(
        v.rule == "intergreen" and v.groups[0] == north and v.required_s == pytest.approx(7.0)
        for v in bad
    )
    # a programme that declares a clearance shorter than width / 1.0 m/s
    prog = program_of(_ok_plan(m), m)
    groups = tuple(
        GroupProgram(g.group, ((30.0, 35.0),), 4.0) if g.group == north else g for g in prog.groups
    )
    bad = [
        v
        for v in check_program(SignalProgram("junction:0", 60.0, 0.0, groups), m)
        if v.rule == "pedestrian_clearance"
    ]
    assert bad and bad[0].required_s == pytest.approx(7.0) and bad[0].actual_s == 4.0


def test_rule_max_cycle_and_max_red():
    """DESIGN section 4 (cycle 40-120 s); IISR part 6 art. 110: wait at most 120 s."""
    m = _cross()
    long = SignalProgram(
        "junction:0",
        150.0,
        0.0,
        (
            GroupProgram("a:1", ((0.0, 70.0),), 3.0),
            GroupProgram("a:3", ((0.0, 70.0),), 3.0),
            GroupProgram("a:2", ((76.0, 144.0),), 3.0),
            GroupProgram("a:4", ((76.0, 144.0),), 3.0),
        ),
    )
    assert {v.rule for v in check_program(long, m)} == {"max_cycle"}
    starved = SignalProgram(
        "junction:0",
        60.0,
        0.0,
        (GroupProgram("a:1", ((0.0, 55.0),), 3.0), GroupProgram("a:3", ((0.0, 55.0),), 3.0)),
    )
    bad = [v for v in check_program(starved, m) if v.rule == "max_red"]
    assert {v.groups for v in bad} == {("a:2",), ("a:4",)}
    assert "never green" in bad[0].message


def test_rule_all_red():
    """MUTCD 2009 4D.26 para 09: a red clearance should not exceed 6 s, except to clear an
    exceptionally wide intersection: above 6 s only as far as the junction's geometry needs."""
    m = _cross()  # a 14 m cross-roads: its all-red need is under 2 s
    ns, ew = _edges(m, "a:1", "a:3"), _edges(m, "a:2", "a:4")
    for red, refused in ((6.0, False), (6.5, True), (10.0, True)):
        plan = SignalPlan(
            "junction:0",
            60.0,
            0.0,
            (Phase(ns, 27.0 - red), Phase(ew, 27.0 - red)),
            all_red_s=red,
        )
        bad = [v for v in check_plan(plan, m) if v.rule == "all_red"]
        assert bool(bad) is refused, red
    assert bad[0].required_s == pytest.approx(6.0)
    assert bad[0].actual_s == pytest.approx(10.0)
    assert "geometry" in bad[0].message
    # a plain plan never has more than the hard ceiling, whatever the junction
    with pytest.raises(InputValidationError, match="all_red_s"):
        SignalPlan("junction:0", 80.0, 0.0, (Phase(ns, 25.0), Phase(ew, 25.0)), all_red_s=12.5)


def _retimed(plan: SignalPlan, all_red_s: float) -> SignalPlan:
    """The plan with another all-red, same cycle: its longest green gives or takes the change."""
    k = max(range(len(plan.phases)), key=lambda i: plan.phases[i].green_s)
    delta = (all_red_s - plan.all_red_s) * len(plan.phases)
    phases = list(plan.phases)
    phases[k] = dataclasses.replace(phases[k], green_s=phases[k].green_s - delta)
    return dataclasses.replace(plan, phases=tuple(phases), all_red_s=all_red_s, plan_id="")


def test_wide_junctions_get_the_all_red_their_geometry_needs(montpellier):
    """Montpellier's widest clustered junctions (30-65 m across) need 6.1-10.1 s of all-red:
    they get a plan with it, and no more than it."""
    from twin.scenarios.network import signal_plans
    from twin.scenarios.signals import ALL_RED_GUIDE_S, ALL_RED_MAX_S
    from twin.signals.plans import all_red_for

    plans = signal_plans(montpellier)
    assert not [r for r in plans.skipped.values() if "all_red_s" in r]
    wide = {j: p for j, p in plans.items() if p.all_red_s > ALL_RED_GUIDE_S}
    assert {"junction:286", "junction:32", "junction:5"} <= set(wide)
    for jid, plan in wide.items():
        model = plans.models[jid]
        assert plan.all_red_s == pytest.approx(all_red_for(model, model.stages))
        assert plan.all_red_s <= ALL_RED_MAX_S
        assert check_plan(plan, model) == []
        # one tenth of a second less all-red breaks an intergreen of the geometry
        shorter = _retimed(plan, plan.all_red_s - 0.1)
        assert "intergreen" in {v.rule for v in check_plan(shorter, model)}
        # and one tenth more than the geometry needs, above 6 s, is refused
        longer = _retimed(plan, plan.all_red_s + 0.1)
        assert "all_red" in {v.rule for v in check_plan(longer, model)}


def test_every_rule_is_tested_here():
    assert set(RULES) == {
        "conflict",
        "min_green",
        "amber",
        "intergreen",
        "pedestrian_clearance",
        "max_cycle",
        "max_red",
        "all_red",
    }


def test_one_off_sequence_ends_are_not_judged():
    m = _cross()
    seq = SignalProgram(
        "junction:0",
        30.0,
        0.0,
        (
            GroupProgram("a:1", ((0.0, 2.0),), 3.0),  # cut by the start: not a short green
            GroupProgram("a:3", ((0.0, 2.0),), 3.0),
            GroupProgram("a:2", ((8.0, 30.0),), 3.0),
            GroupProgram("a:4", ((8.0, 30.0),), 3.0),
        ),
        horizon_s=30.0,
    )
    assert check_program(seq, m) == []
    too_soon = SignalProgram(
        "junction:0",
        30.0,
        0.0,
        (
            GroupProgram("a:1", ((0.0, 2.0),), 3.0),
            GroupProgram("a:2", ((6.0, 30.0),), 3.0),
        ),
        horizon_s=30.0,
    )
    assert "intergreen" in {v.rule for v in check_program(too_soon, m)}


def test_program_shapes_are_checked():
    with pytest.raises(InputValidationError, match="window"):
        SignalProgram("j", 60.0, 0.0, (GroupProgram("a", ((50.0, 40.0),), 3.0),))
    with pytest.raises(InputValidationError, match="twice"):
        SignalProgram("j", 60.0, 0.0, (GroupProgram("a", (), 3.0), GroupProgram("a", (), 3.0)))
    m = _cross()
    with pytest.raises(UnknownAssetError, match="nearest"):
        check_program(SignalProgram("junction:0", 60.0, 0.0, (GroupProgram("b:1", (), 3.0),)), m)


# ---------------------------------------------------------------- plans as data ---------------
def test_plan_document_for_the_live_layer():
    m = _cross(crossings=True)
    t0 = dt.datetime(2024, 6, 4, 6, tzinfo=dt.UTC)
    plan = webster(m, {"a:1": 500.0, "a:3": 400.0, "a:2": 300.0, "a:4": 250.0}, plan_id="p1")
    plan = SignalPlan.from_dict(
        {
            **plan.to_dict(),
            "valid_from": t0.isoformat(),
            "valid_until": (t0 + dt.timedelta(hours=3)).isoformat(),
        }
    )
    doc = json.loads(json.dumps(plan_document(plan, m)))
    assert doc["kind"] == "signal_plan" and doc["id"] == "p1" and doc["junction"] == "junction:0"
    assert (
        doc["valid_from"] == "2024-06-04T06:00:00Z" and doc["valid_until"] == "2024-06-04T09:00:00Z"
    )
    assert doc["safety"]["checked"] is True
    # the programme in the document is what the gate re-checks: it passes
    prog = SignalProgram.from_dict(doc["program"])
    assert check_program(prog, m) == []
    # and the plan itself round-trips
    assert SignalPlan.from_dict(plan.to_dict()) == plan
    # an unsafe plan gets no document
    ns, ew = _edges(m, "a:1", "a:3"), _edges(m, "a:2", "a:4")
    bad = SignalPlan("junction:0", 60.0, 0.0, (Phase(ns + ew[:1], 25.0), Phase(ew, 25.0)))
    with pytest.raises(UnsafePlanError):
        plan_document(bad, m)


def test_plan_validity_must_be_tz_aware():
    m = _cross()
    with pytest.raises(InputValidationError, match="tz-aware"):
        _ok_plan(m, valid_from=dt.datetime(2024, 6, 4, 6))  # noqa: DTZ001


# ---------------------------------------------------------------- Webster on the model --------
def test_webster_on_the_model_is_safe_and_follows_webster():
    m = _cross(crossings=True)
    flows = {"a:1": 600.0, "a:3": 500.0, "a:2": 300.0, "a:4": 200.0}
    plan = webster(m, flows)
    assert check_plan(plan, m) == []
    mins = stage_minimums(m)
    # the crossings need their walk (5 s) and clearance (7 s) within their stage
    assert max(mins) > 5.0
    assert all(p.green_s >= lo - 1e-9 for p, lo in zip(plan.phases, mins, strict=True))
    assert plan.walks if hasattr(plan, "walks") else True
    walks = {c for p in plan.phases for c, _ in p.walks}
    assert walks == set(m.pedestrian_groups)
    # heavier flows, longer cycle
    heavy = webster(m, {k: 1.5 * v for k, v in flows.items()})
    assert heavy.cycle_s > plan.cycle_s


def test_stage_plan_refuses_an_impossible_junction():
    m = _cross()
    with pytest.raises(InputValidationError, match="minimum green"):
        stage_plan(m, [3.0, 40.0], rules=SafetyRules())
    # the validator's own minimum may be stricter than the plan's
    plan = stage_plan(m, [6.0, 40.0])
    with pytest.raises(UnsafePlanError, match="min_green"):
        validate(plan, m, rules=SafetyRules(min_green_s=7.0))
    with pytest.raises(InputValidationError, match="greens_s"):
        stage_plan(m, [20.0])


def test_signal_plans_of_a_twin_are_validated(paris):
    from twin.scenarios.network import signal_plans

    plans = signal_plans(paris)
    assert len(plans) >= 20
    for jid, plan in plans.items():
        assert check_plan(plan, plans.models[jid]) == []
    assert all(reason for reason in plans.skipped.values())
