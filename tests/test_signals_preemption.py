"""Emergency preemption: the one-off sequence and its recovery, on a hand-built junction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimize.signals import preemption
from twin._errors import InputValidationError
from twin.scenarios.signals import SignalPlan
from twin.signals.junction import JunctionModel, approaches_of, build_junction, crossroads_graph
from twin.signals.plans import stage_plan
from twin.signals.safety import (
    GroupProgram,
    SafetyRules,
    SignalProgram,
    check_program,
    program_of,
)

# the rules preemption applies unless told otherwise (IISR part 6 art. 110: 240 s at most)
PREEMPTION_RULES = SafetyRules(max_red_s=240.0)


def _crossroads() -> JunctionModel:
    """A crossroads with crossings on the north and east arms, 10 m from the centre (7 m wide)."""
    g = crossroads_graph()
    g.add_node(90, x=0.0, y=10.0, highway="crossing")
    g.add_node(91, x=10.0, y=0.0, highway="crossing")
    return build_junction(
        g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]), crossings=[90, 91]
    )


def _walk_across_the_boundary(m: JunctionModel) -> tuple[SignalPlan, str]:
    """Three stages; the east crossing walks with the last and the first, so across the cycle.

    Its walk starts with the last stage and ends 7 s (its clearance) before the second stage;
    the first stage is 5 s, so the walk ends 2.9 s into the next cycle.
    """
    walker = next(c.id for c in m.crossings if c.node == 91)
    stages = [("a:1", walker), ("a:2", "a:4", "crossing:0.0"), ("a:3", walker)]
    return stage_plan(m, [5.0, 25.0, 20.0], stages=stages), walker


def _greens(prog: SignalProgram, group: str) -> list[tuple[float, float]]:
    gp = prog.group(group)
    return [] if gp is None else list(gp.greens)


def _clip(windows: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    return [(max(s, lo), min(e, hi)) for s, e in windows if min(e, hi) > max(s, lo) + 1e-9]


def _green_starts(base: SignalProgram, m: JunctionModel) -> list[float]:
    """Where a plan's vehicle greens start in its cycle (the cycle start among them)."""
    return sorted({0.0} | {s for g in m.vehicle_groups for s, _ in _greens(base, g)})


def _check_resumed(
    prog: SignalProgram, base: SignalProgram, m: JunctionModel, emergency: str, label: object
) -> float:
    """Assert the sequence runs the plan from its resume point R (one cycle before its
    horizon, at a green start of the plan) to its horizon: each group's greens are the plan's,
    except a remnant shorter than a green may be at R (left out) and a late start, by at most
    its intergreen, for a group conflicting with the hold. Returns R."""
    cyc, horizon = base.cycle_s, prog.horizon_s
    assert horizon is not None
    resume = horizon - cyc
    assert any(resume % cyc == pytest.approx(s, abs=1e-6) for s in _green_starts(base, m)), label
    for g in m.group_ids:
        floor = (
            PREEMPTION_RULES.min_green_s if g in m.vehicle_groups else PREEMPTION_RULES.min_walk_s
        )
        unrolled = [(s + k * cyc, e + k * cyc) for k in range(-1, 4) for s, e in _greens(base, g)]
        want = [
            (s, e)
            for s, e in _clip(unrolled, resume, horizon)
            if e - s >= floor - 1e-9 or s > resume + 1e-9  # a short remnant at R is left out
        ]
        got = _clip(_greens(prog, g), resume, horizon)
        assert [e for _, e in got] == [pytest.approx(e) for _, e in want], (label, g, got, want)
        late = m.intergreen(emergency, g) if m.conflicts(emergency, g) else 0.0
        for (a, _), (w, _) in zip(got, want, strict=True):
            assert w - 1e-9 <= a <= w + late + 1e-9, (label, g)
    return resume


def test_recovery_leaves_out_a_walk_remnant_shorter_than_the_minimum():
    """The recovery resumes the plan at a green start R. Where R is the cycle start and a
    crossing's walk began before R (the sequence held it) and the plan has less than the
    minimum walk of it left after R, showing that remnant would be a walk shorter than
    ``min_walk_s`` (5 s; the validator's ``min_green`` rule): the crossing waits for its next
    walk instead, and every other group runs the plan from R."""
    m = _crossroads()
    plan, walker = _walk_across_the_boundary(m)
    cyc = plan.cycle_s
    base = program_of(plan, m)
    ((w_start, w_end),) = _greens(base, walker)
    remnant = w_end - cyc
    assert w_start < cyc < w_end and 0.0 < remnant < PREEMPTION_RULES.min_walk_s
    emergency = "a:2"
    assert m.conflicts(walker, emergency)
    hold = 20.0
    at_boundary = 0
    for call in np.arange(0.0, cyc, 1.0):
        prog = preemption(plan, m, emergency, call_s=float(call), hold_s=hold)
        horizon = prog.horizon_s
        assert horizon is not None
        assert check_program(prog, m, rules=PREEMPTION_RULES) == [], call
        # the emergency approach is green for the hold from the first safe moment on
        held = [(s, e) for s, e in _greens(prog, emergency) if e >= call + hold - 1e-9]
        assert held and held[0][1] - max(held[0][0], call) >= hold - 1e-9, call
        # the recovery: from R (one cycle before the horizon) the plan's own stages
        resume = _check_resumed(prog, base, m, emergency, call)
        assert resume >= held[0][1] - 1e-9 or resume >= call + hold - 1e-9
        if resume % cyc == pytest.approx(0.0, abs=1e-6):
            # resumed at the cycle start: the crossing's 2.9 s remnant is left out
            at_boundary += 1
            assert not [w for w in _greens(prog, walker) if w[0] < resume < w[1]], call
            assert not [w for w in _greens(prog, walker) if w[0] == pytest.approx(resume)], call
    assert at_boundary >= 3


def test_an_unsafe_sequence_is_refused_naming_the_rule():
    """The whole sequence (the cut of the running greens, the hold, the recovery) is validated
    as one: a hold that keeps the other approaches red longer than the rules allow is refused
    at every boundary, and the refusal names the rule, the groups and the seconds."""
    m = _crossroads()
    plan, _ = _walk_across_the_boundary(m)
    # (the short hold keeps the east crossing waiting 94.6 s: its walk ends 2.9 s into the cycle)
    strict = SafetyRules(max_red_s=100.0)
    assert check_program(program_of(plan, m), m, rules=strict) == []
    preemption(plan, m, "a:2", call_s=12.0, hold_s=20.0, rules=strict)  # a short hold passes
    with pytest.raises(InputValidationError, match=r"no safe recovery.*max_red: a:\d .* s"):
        preemption(plan, m, "a:2", call_s=12.0, hold_s=120.0, rules=strict)


def _t_junction() -> JunctionModel:
    """A T junction (arms N, E, S; no west arm) whose south arm is one way into it.

    The north approach only turns left into the east arm, which crosses nothing the east
    approach does (it turns right into the north arm): the two are compatible. The south
    approach (through to the north, right to the east) runs with the north one and conflicts
    with the east one.
    """
    g = crossroads_graph()
    g.remove_node(4)
    g.remove_edge(0, 3)
    return build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))


def _spliced(base: SignalProgram, prog: SignalProgram, call: float, cyc: float) -> SignalProgram:
    """The signals as they run: the plan up to the call (from a cycle before the sequence's
    start), the sequence from it; times one cycle later, for the validator to see the greens,
    ambers and intergreens that run into the call from before it."""
    horizon = prog.horizon_s
    assert horizon is not None
    groups = []
    for gp in base.groups:
        plan_w = [(s + k * cyc, e + k * cyc) for k in (-2, -1, 0, 1) for s, e in gp.greens]
        wins = _clip(plan_w, -cyc, call) + _clip(_greens(prog, gp.group), call, horizon)
        merged: list[tuple[float, float]] = []
        for s, e in sorted(wins):
            if merged and s <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        shifted = tuple((s + cyc, e + cyc) for s, e in merged)
        groups.append(GroupProgram(gp.group, shifted, gp.amber_s))
    full = horizon + cyc
    return SignalProgram(base.junction, full, base.offset_s, tuple(groups), horizon_s=full)


def test_a_compatible_green_running_at_the_call_is_kept_through_to_the_hold():
    """A group compatible with the emergency movement, green at the call, whose plan ends
    its green less than an amber before the hold can start (the conflicting group cut at the
    call still needs its intergreen): ending it there and starting it again with the hold
    would show an amber shorter than 3 s (the validator's ``amber`` rule), so every recovery
    was refused. It keeps its green through to the hold instead; no amber is shortened.
    Every call second gets a sequence safe as spliced into the running plan, the emergency
    approach green for the hold, and the plan resumed at a green start."""
    m = _t_junction()
    emergency, compatible, cut = "a:2", "a:1", "a:3"
    assert not m.conflicts(compatible, emergency) and m.conflicts(cut, emergency)
    plan = stage_plan(m, [30.0, 20.0], offset_s=7.0)
    cyc = plan.cycle_s
    base = program_of(plan, m)
    ((c_start, c_end),) = _greens(base, compatible)
    assert _greens(base, cut) == [(c_start, c_end)]
    amber = plan.amber_s
    hold = 20.0
    # the calls at which the hold would start less than an amber after the compatible green
    # ends: the case this test is about (its own seconds, so the test keeps its point)
    tight = [
        call
        for call in np.arange(0.0, cyc, 0.5)
        if c_end - m.intergreen(cut, emergency) < call < c_end
        and c_end < call + m.intergreen(cut, emergency) < c_end + amber
    ]
    assert len(tight) >= 4
    for call_plan in np.arange(0.0, cyc, 0.5):
        call_plan = float(call_plan)
        call = (call_plan - plan.offset_s) % cyc  # in the sequence's own time
        prog = preemption(plan, m, emergency, call_s=call_plan, hold_s=hold)
        horizon = prog.horizon_s
        assert horizon is not None
        assert check_program(prog, m, rules=PREEMPTION_RULES) == [], call
        assert check_program(_spliced(base, prog, call, cyc), m, rules=PREEMPTION_RULES) == [], call
        held = [(s, e) for s, e in _greens(prog, emergency) if e >= call + hold - 1e-9]
        assert held and held[0][1] - max(held[0][0], call) >= hold - 1e-9, call
        if c_start <= call < c_end:
            # green at the call: one green from its plan start through the hold
            keep = [(s, e) for s, e in _greens(prog, compatible) if s <= call < e]
            assert keep and keep[0][0] == pytest.approx(c_start), call
            assert keep[0][1] >= call + hold - 1e-9, call
        resume = _check_resumed(prog, base, m, emergency, call)
        assert resume >= held[0][1] - 1e-9 or resume >= call + hold - 1e-9


def test_a_walk_running_across_the_cycle_start_is_cut_and_cleared_at_a_call():
    """A crossing that walks with the last stage and on into the first is walking when a call
    comes early in the cycle. The sequence starts at the cycle's start, but that walk began in
    the cycle before: it must be cut at the call and cleared (7 s) before a conflicting hold
    starts, as any running walk is. Validated spliced into the running plan: pedestrians on
    the crossing never meet the emergency approach's green."""
    m = _crossroads()
    _, walker = _walk_across_the_boundary(m)
    stages = [("a:1", walker), ("a:2", "a:4", "crossing:0.0"), ("a:3", walker)]
    plan = stage_plan(m, [15.0, 25.0, 20.0], stages=stages)
    cyc = plan.cycle_s
    base = program_of(plan, m)
    ((w_start, w_end),) = _greens(base, walker)
    assert w_start < cyc < w_end - PREEMPTION_RULES.min_walk_s  # walking well into the cycle
    for emergency in ("a:2", "a:4"):
        assert m.conflicts(walker, emergency)
        for call in np.arange(0.0, cyc, 0.5):
            call = float(call)
            prog = preemption(plan, m, emergency, call_s=call, hold_s=20.0)
            assert check_program(prog, m, rules=PREEMPTION_RULES) == [], call
            spliced = _spliced(base, prog, call, cyc)
            assert check_program(spliced, m, rules=PREEMPTION_RULES) == [], (emergency, call)


def test_a_held_walk_clears_before_the_plan_resumes():
    """A crossing compatible with the emergency approach walks with its hold. Where the plan
    resumes at R less than the walk's clearance after the hold, the walk ends early enough to
    clear before the plan's first conflicting green (never before its minimum walk), instead of
    running into R: the plan resumes at the first boundary the called approach's own
    intergreens allow."""
    m = _crossroads()
    plan, _ = _walk_across_the_boundary(m)
    cyc = plan.cycle_s
    base = program_of(plan, m)
    emergency, walk, hold = "a:2", "crossing:0.0", 20.0
    assert not m.conflicts(walk, emergency)
    own = max(m.intergreen(emergency, h) for h in m.group_ids if m.conflicts(emergency, h))
    clearance = max(m.intergreen(walk, h) for h in m.group_ids if m.conflicts(walk, h))
    assert clearance > own
    tight = 0
    for call in np.arange(0.0, cyc, 0.5):
        call = float(call)
        prog = preemption(plan, m, emergency, call_s=call, hold_s=hold)
        horizon = prog.horizon_s
        assert horizon is not None
        assert check_program(_spliced(base, prog, call, cyc), m, rules=PREEMPTION_RULES) == []
        held = [(s, e) for s, e in _greens(prog, emergency) if e >= call + hold - 1e-9]
        hold_end = held[0][1]
        first = math.ceil(hold_end / cyc - 1e-9) * cyc
        if first - hold_end < own or first - hold_end >= clearance:
            continue
        tight += 1
        assert horizon - cyc == pytest.approx(first), call  # resumed at the first boundary
        ends = [e for s, e in _greens(prog, walk) if s < hold_end < e + clearance]
        assert ends and max(ends) <= first - clearance + 1e-9, call
    assert tight >= 4


def test_a_hold_ending_just_before_the_boundary_resumes_there_with_late_starts():
    """A hold that ends less than an intergreen before the cycle boundary R does not push the
    recovery a whole cycle later: the conflicting groups the plan turns green at R start late,
    by the seconds missing, and the plan runs from R as it was. The hold is served in full."""
    m = _crossroads()
    plan = stage_plan(m, [20.0, 20.0], stages=m.stages)
    cyc = plan.cycle_s
    call, hold = 27.0, 20.0  # a:2 is green at the call (stage 2): its hold ends at 47.0
    assert program_of(plan, m).group("a:2").greens[0][0] < call  # type: ignore[union-attr]
    prog = preemption(plan, m, "a:2", call_s=call, hold_s=hold)
    hold_end = call + hold
    assert hold_end + m.intergreen("a:2", "a:3") > cyc  # too close to R for a:3's start at R
    assert prog.horizon_s == pytest.approx(2 * cyc)  # resumed at R = one cycle, not two
    assert any(s <= call < hold_end <= e for s, e in _greens(prog, "a:2"))
    for h in ("a:1", "a:3"):
        first = min(s for s, _ in _greens(prog, h) if s > call)
        assert first == pytest.approx(max(cyc, hold_end + m.intergreen("a:2", h)))
    # after the late start, the plan's own greens: a:3 ends stage 1 where the plan does
    assert max(e for _, e in _greens(prog, "a:3") if e <= 2 * cyc) == pytest.approx(cyc + 20.0)
    base = program_of(plan, m)
    assert check_program(_spliced(base, prog, call, cyc), m, rules=PREEMPTION_RULES) == []
