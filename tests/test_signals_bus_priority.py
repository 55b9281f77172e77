"""Bus priority by check-in / check-out: the controller's answer to one bus call."""

from __future__ import annotations

import numpy as np
import pytest

from optimize.signals import _one_off, bus_call, bus_priorities, signal_delay
from twin._errors import InputValidationError, UnsafePlanError
from twin.scenarios.network import REFERENCE_WEEKDAY, signal_plans
from twin.signals.buses import bus_groups, bus_routes
from twin.signals.junction import approaches_of, build_junction, crossroads_graph
from twin.signals.plans import stage_minimums, stage_plan, webster
from twin.signals.safety import (
    GroupProgram,
    SafetyRules,
    SignalProgram,
    check_plan,
    check_program,
    program_of,
    validate,
)


@pytest.fixture(scope="module")
def crossroads():  # type: ignore[no-untyped-def]
    g = crossroads_graph()
    m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
    plan = webster(m, {"a:1": 600.0, "a:3": 500.0, "a:2": 500.0, "a:4": 400.0}, cycle_s=80.0)
    bus = m.group_of_edge(plan.phases[0].approaches[0])
    other = m.group_of_edge(plan.phases[1].approaches[0])
    mins = stage_minimums(m, all_red_s=plan.all_red_s)
    return m, plan, bus, other, mins


def _greens(prog, group):  # type: ignore[no-untyped-def]
    gp = prog.group(group)
    return [] if gp is None else list(gp.greens)


def test_a_bus_just_after_its_green_gains_the_extension(crossroads):
    m, plan, bus, other, mins = crossroads
    start, green = plan.phase_starts()[0], plan.phases[0].green_s
    end = start + green
    arrival = end + 4.0  # the bus reaches the stop line 4 s after the plan's green ends
    base = program_of(plan, m)
    assert signal_delay(base, bus, [arrival])[0] > 20.0  # without priority: the next cycle
    call = end - 6.0  # it checked in while its stage was green
    shorter = bus_call(plan, m, bus, call_s=call, extension_s=2.0)
    ans = bus_call(plan, m, bus, call_s=call, extension_s=6.0)
    assert ans.early_s == 0 and ans.extension_s == pytest.approx(6.0)
    assert ans.green_end_s == pytest.approx(end + 6.0)
    assert signal_delay(ans.program, bus, [arrival])[0] == 0.0
    # the 2 s extension is the same programme up to its end: the controller may ask for more
    cut = end + 2.0
    for g in m.group_ids:
        a = [(s, min(e, cut)) for s, e in _greens(shorter.program, g) if s < cut]
        b = [(s, min(e, cut)) for s, e in _greens(ans.program, g) if s < cut]
        np.testing.assert_allclose(np.ravel(a), np.ravel(b))
    # the other stage gives the time back and keeps at least its minimum; the plan resumes
    cyc = plan.cycle_s
    others = _greens(ans.program, other)
    assert others[0][1] - others[0][0] == pytest.approx(plan.phases[1].green_s - 6.0)
    assert others[0][1] - others[0][0] >= mins[1] - 1e-9
    assert others[0][1] == pytest.approx(plan.phase_starts()[1] + plan.phases[1].green_s)
    later = [(s - cyc, e - cyc) for s, e in _greens(ans.program, bus) if s >= cyc]
    np.testing.assert_allclose(later[0], _greens(base, bus)[0])
    assert check_program(ans.program, m) == []
    # an extension is bounded by what the others have above their minimums
    most = bus_call(plan, m, bus, call_s=call, extension_s=500.0)
    assert most.extension_s == pytest.approx(plan.phases[1].green_s - mins[1])


def test_a_bus_at_red_gets_an_early_green_within_the_minimums(crossroads):
    m, plan, bus, other, mins = crossroads
    s1 = plan.phase_starts()[1]
    inter = plan.intergreen_s
    cyc = plan.cycle_s
    # the conflicting stage has just started: it runs its minimum green, then the intergreen
    ans = bus_call(plan, m, bus, call_s=s1 + 1.0)
    assert ans.green_start_s == pytest.approx(s1 + mins[1] + inter)
    assert any(s == pytest.approx(s1 + mins[1] + inter) for s, _ in _greens(ans.program, bus))
    assert ans.green_end_s == pytest.approx(cyc + plan.phases[0].green_s)  # the plan's end
    # past its minimum: it ends at the check-in
    late = s1 + mins[1] + 4.0
    ans = bus_call(plan, m, bus, call_s=late)
    assert ans.green_start_s == pytest.approx(late + inter)
    # never earlier than the minimums allow, wherever the check-in falls in the red
    for c in np.arange(s1 - inter + 0.5, cyc, 0.5):
        ans = bus_call(plan, m, bus, call_s=float(c))
        floor = min(max(float(c), s1 + mins[1]) + inter, cyc)  # cyc: the plan's own start
        assert ans.green_start_s >= floor - 1e-9
        assert check_program(ans.program, m) == []
    # capped: at most max_early_s taken from the others
    ans = bus_call(plan, m, bus, call_s=s1 + 1.0, max_early_s=3.0)
    assert ans.early_s == pytest.approx(3.0)
    assert ans.green_start_s == pytest.approx(cyc - 3.0)


def test_nothing_unsafe_passes(bondy, crossroads):
    m, plan, bus, other, _ = crossroads
    # an extension that would keep the other approaches red longer than the rules allow is
    # refused (by the validator, not by construction)
    base = program_of(plan, m)
    (s, e), cyc = _greens(base, other)[0], plan.cycle_s
    amber = base.group(other).amber_s  # the red is counted from the end of the amber
    strict = SafetyRules(max_red_s=cyc - (e - s) - amber + 3.0)
    end = plan.phase_starts()[0] + plan.phases[0].green_s
    assert check_program(base, m, rules=strict) == []
    ok = bus_call(plan, m, bus, call_s=end - 5.0, extension_s=2.0, rules=strict)
    assert check_program(ok.program, m, rules=strict) == []
    with pytest.raises(InputValidationError):
        bus_call(plan, m, bus, call_s=end - 5.0, extension_s=6.0, rules=strict)
    # on Bondy's bus approaches, every check-in second, with and without extension: each
    # answer passes the validator, and no stage runs below its minimum green
    plans = signal_plans(bondy, day=REFERENCE_WEEKDAY, hour=8)
    prio = bus_priorities(plans, plans.models, bus_groups(bus_routes(bondy), plans.models))
    answered = 0
    for jid, items in prio.items():
        p, model = plans[jid], plans.models[jid]
        for bp in items:
            for c in np.arange(0.0, p.cycle_s, 2.0):
                for ext in (0.0, 6.0, 15.0):
                    try:
                        ans = bus_call(p, model, bp.group, call_s=float(c), extension_s=ext)
                    except InputValidationError:
                        continue
                    answered += 1
                    assert check_program(ans.program, model) == [], (jid, bp.group, c, ext)
                    for gp in ans.program.groups:
                        if model.group(gp.group).kind != "vehicle":
                            continue
                        for s, e in gp.greens:
                            if s > 0.0 and e < ans.program.cycle_s:
                                assert e - s >= p.min_green_s - 1e-6
    assert answered > 0


def _after_a_cycle_of(base, prog):  # type: ignore[no-untyped-def]
    """``prog`` (a one-off from a cycle start) with one cycle of ``base`` run before it."""
    cyc = base.cycle_s
    groups = []
    for gp in base.groups:
        before = [(s, min(e, cyc)) for s, e in gp.greens]
        after = [(s + cyc, e + cyc) for s, e in _greens(prog, gp.group)]
        merged: list[tuple[float, float]] = []
        for s, e in sorted(before + after):
            if merged and s <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        groups.append(GroupProgram(gp.group, tuple(merged), gp.amber_s))
    full = cyc + prog.cycle_s
    return SignalProgram(base.junction, full, base.offset_s, tuple(groups), horizon_s=full)


def test_an_early_green_is_validated_as_spliced_into_the_running_cycle():
    """The whole-splice check of :func:`bus_call`.

    At the check-in the conflicting stage's crossing is still walking: the plan walks it until
    its clearance (7 m at 1.0 m/s, MUTCD 2009 4E.06) ends as the bus's stage starts. Cutting
    that stage at the check-in gives a plan that is safe as a cycle of its own, but not as
    spliced into the running cycle: the walk already shown needs its whole clearance before
    the bus's green. The answer is validated as spliced (the plan's previous cycle, the plan
    up to the check-in, the new timing, the plan again), so the cut comes later.
    """
    g = crossroads_graph()
    g.add_node(90, x=0.0, y=10.0, highway="crossing")
    g.add_node(91, x=10.0, y=0.0, highway="crossing")
    m = build_junction(
        g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]), crossings=[90, 91]
    )
    plan = webster(m, {"a:1": 600.0, "a:3": 500.0, "a:2": 500.0, "a:4": 400.0}, cycle_s=80.0)
    bus = m.group_of_edge(plan.phases[0].approaches[0])
    walker = dict(plan.phases[1].walks)
    (crossing,) = [c for c in walker if m.conflicts(c, bus)]
    clear = m.clearance_s(crossing)
    base = program_of(plan, m)
    ((w_start, w_end),) = _greens(base, crossing)
    s1, cyc = plan.phase_starts()[1], plan.cycle_s
    mins = stage_minimums(m, all_red_s=plan.all_red_s)
    assert w_start == pytest.approx(s1) and clear > plan.intergreen_s
    calls = np.arange(s1 + mins[1], w_end, 0.5)
    assert len(calls) > 10
    early = []
    for c in calls:
        ans = bus_call(plan, m, bus, call_s=float(c))
        early.append(ans.early_s)
        # the walk that was showing at the check-in runs on, and clears before the bus's green
        shown = [e for s, e in _greens(ans.program, crossing) if s <= c + 1e-9 <= e]
        assert shown, c
        assert ans.green_start_s >= shown[0] + clear - 1e-9, c
        assert check_program(_after_a_cycle_of(base, ans.program), m) == [], c
    assert np.mean(np.array(early) > 0) > 0.8  # the bus still gains, mostly
    # the same early green with the stage cut at the check-in at once: the new timing alone
    # is a safe plan, the splice is not, and the validator refuses it naming the rule
    c = s1 + 10.0
    saved = plan.phases[1].green_s - (c - s1)
    chosen = stage_plan(
        m,
        [plan.phases[0].green_s + saved, c - s1],
        offset_s=plan.offset_s - saved,
        all_red_s=plan.all_red_s,
    )
    assert check_plan(chosen, m) == []
    handback = bus_call(plan, m, bus, call_s=c).handback_s
    _, spliced = _one_off(base, program_of(chosen, m), -saved, c, handback, cyc)
    with pytest.raises(UnsafePlanError, match="intergreen") as err:
        validate(spliced, m)
    bad = [v for v in err.value.violations if v.rule == "intergreen"]  # type: ignore[attr-defined]
    assert bad and all(v.groups[0] == crossing for v in bad)
    assert {v.groups[1] for v in bad} == {m.group_of_edge(a) for a in plan.phases[0].approaches}
    assert all(v.required_s == pytest.approx(clear) for v in bad)
    assert all(v.actual_s == pytest.approx(plan.intergreen_s) for v in bad)
